/* Which close status codes are legal on the wire (RFC 6455 section 7.4, IANA registry).
 * The one copy of this table in the project; JavaScript asks the addon for it. */
#include "close_code.h"

bool close_code_is_valid(int code) {
  /* 1004 is reserved, 1005 and 1006 are local-only signals ("no status", "abnormal"),
   * and 1015 ("TLS failure") must never be sent, so none of them may appear in a frame. */
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  /* 3000-3999 are IANA-registered for libraries and frameworks, 4000-4999 private use. */
  return code >= 3000 && code <= 4999;
}
