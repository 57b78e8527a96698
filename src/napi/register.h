/* Each glue file registers its functions (and constants) on the addon's exports from
 * NAPI_MODULE_INIT (module.c). Each returns false with a JS exception pending. */
#ifndef WSN_NAPI_REGISTER_H
#define WSN_NAPI_REGISTER_H

#include <node_api.h>
#include <stdbool.h>

typedef bool (*register_fn)(napi_env env, napi_value exports, napi_value constants);

bool connections_register(napi_env env, napi_value exports, napi_value constants);
bool receive_register(napi_env env, napi_value exports, napi_value constants);
bool send_register(napi_env env, napi_value exports, napi_value constants);
bool jobs_register(napi_env env, napi_value exports, napi_value constants);
bool parking_register(napi_env env, napi_value exports, napi_value constants);
bool upgrade_register(napi_env env, napi_value exports, napi_value constants);
bool native_transport_register(napi_env env, napi_value exports, napi_value constants);

#endif
