/* Placeholder: the native transport. */
#include "register.h"

bool native_transport_register(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return true;
}
