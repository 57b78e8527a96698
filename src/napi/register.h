/* The parts of the addon kept in their own files register their functions on the exports
 * object from NAPI_MODULE_INIT (addon.c). Each returns false with a JS exception pending. */
#ifndef WS_NATIVE_REGISTER_H
#define WS_NATIVE_REGISTER_H

#include <node_api.h>
#include <stdbool.h>

/* native_transport.c: the addon owns the TCP socket after the upgrade. */
bool native_transport_register(napi_env env, napi_value exports);

/* addon_upgrade.c: the HTTP upgrade request parser of the raw-socket path (handleSocket). */
bool upgrade_register(napi_env env, napi_value exports);

#endif
