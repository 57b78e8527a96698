/* The addon's entry point: each part of the glue registers its functions on the exports, and
 * its constants on exports.constants. Context-aware (per-environment state only), so worker
 * threads each get their own. */
#include "napi/addon.h"
#include "napi/register.h"

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  /* connections first: the instance data every other part reads. */
  static const register_fn parts[] = {connections_register,
                                      receive_register,
                                      send_register,
                                      jobs_register,
                                      parking_register,
                                      upgrade_register,
                                      native_transport_register};
  napi_value constants;
  if (napi_create_object(env, &constants) != napi_ok) return NULL;
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
    if (!parts[i](env, exports, constants)) return NULL;
  if (napi_set_named_property(env, exports, "constants", constants) != napi_ok) return NULL;
  return exports;
}
