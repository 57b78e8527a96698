/* Which close status codes may appear on the wire (RFC 6455 section 7.4 and the IANA
 * registry). The single source of truth: JavaScript asks the addon instead of keeping a copy. */
#ifndef WSN_CLOSE_CODE_H
#define WSN_CLOSE_CODE_H

#include <stdbool.h>

/* Codes a peer may send in a close frame and an application may pass to close():
 * 1000-1003, 1007-1014, 3000-4999. 1004-1006 and 1015 are reserved and must never be sent;
 * everything below 1000, 1016-2999 and 5000 and above is invalid. */
bool close_code_is_valid(int code);

#endif
