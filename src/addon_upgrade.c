/* Placeholder: parseUpgradeRequest() comes with wss.handleSocket(). */
#include "register.h"

bool upgrade_register(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return true;
}
