/* Reading arguments and making values: the small Node-API helpers every glue file uses. */
#include <stdlib.h>

#include "napi/addon.h"

bool get_bool(napi_env env, napi_value value) {
  bool b = false;
  napi_get_value_bool(env, value, &b);
  return b;
}

bool get_handle_list(napi_env env, napi_value array, napi_value count, uint32_t **handles,
                     size_t *n) {
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  bool is = false;
  double wanted = -1;
  if (napi_is_typedarray(env, array, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, array, &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint32_array) {
    throw_type_error(env, "ERR_INVALID_ARG_TYPE", "handles must be a Uint32Array");
    return false;
  }
  if (napi_get_value_double(env, count, &wanted) != napi_ok || !(wanted >= 0) ||
      wanted > (double)length || wanted != (double)(size_t)wanted) {
    throw_range_error(env, "ERR_OUT_OF_RANGE", "count must be an integer from 0 to handles.length");
    return false;
  }
  *handles = data;
  *n = (size_t)wanted;
  return true;
}

bool get_bytes(napi_env env, napi_value value, const uint8_t **data, size_t *len) {
  bool is;
  void *ptr = NULL;
  if (napi_is_typedarray(env, value, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length;
    if (napi_get_typedarray_info(env, value, &type, &length, &ptr, NULL, NULL) != napi_ok)
      return false;
    static const size_t element_size[] = {
        [napi_int8_array] = 1,     [napi_uint8_array] = 1,    [napi_uint8_clamped_array] = 1,
        [napi_int16_array] = 2,    [napi_uint16_array] = 2,   [napi_int32_array] = 4,
        [napi_uint32_array] = 4,   [napi_float32_array] = 4,  [napi_float64_array] = 8,
        [napi_bigint64_array] = 8, [napi_biguint64_array] = 8};
    size_t size = (size_t)type < sizeof(element_size) / sizeof(element_size[0]) ? element_size[type]
                                                                                : 1;
    *data = ptr;
    *len = length * size;
    return true;
  }
  if (napi_is_dataview(env, value, &is) == napi_ok && is) {
    if (napi_get_dataview_info(env, value, len, &ptr, NULL, NULL) != napi_ok) return false;
    *data = ptr;
    return true;
  }
  if (napi_is_arraybuffer(env, value, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, value, &ptr, len) != napi_ok) return false;
    *data = ptr;
    return true;
  }
  return false;
}

uint8_t *string_utf8_copy(napi_env env, napi_value value, size_t *len) {
  napi_get_value_string_utf8(env, value, NULL, 0, len);
  char *copy = malloc(*len + 1);
  if (copy) napi_get_value_string_utf8(env, value, copy, *len + 1, len);
  return (uint8_t *)copy;
}

static void free_finalizer(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

napi_status adopt_buffer(napi_env env, uint8_t *data, size_t len, size_t external_min,
                         napi_value *result) {
  napi_status status = napi_generic_failure;
  if (len >= external_min && data != NULL) {
    status = napi_create_external_buffer(env, len, data, free_finalizer, NULL, result);
    if (status == napi_ok) return napi_ok;
    /* Some runtimes forbid external buffers; fall back to a copy. */
  }
  status = napi_create_buffer_copy(env, len, data, NULL, result);
  free(data);
  return status;
}

bool set_uint_property(napi_env env, napi_value object, const char *name, uint32_t value) {
  napi_value v;
  return napi_create_uint32(env, value, &v) == napi_ok &&
         napi_set_named_property(env, object, name, v) == napi_ok;
}
