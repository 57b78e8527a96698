/* The request object of a parsed upgrade request head, for parseUpgradeRequest() and the
 * native listener. */
#ifndef WSN_NAPI_UPGRADE_H
#define WSN_NAPI_UPGRADE_H

#include <node_api.h>

#include "codec/http_request.h"

/* { method, url, httpVersion, httpVersionMajor, httpVersionMinor, headers, rawHeaders,
 * headLength } as Node's http.IncomingMessage has them (header fields combined as it does);
 * NULL with an exception pending. */
napi_value upgrade_request_object(napi_env env, const uint8_t *buf, const http_request *req);

#endif
