/* Placeholder: the HTTP upgrade request parser comes with wss.handleSocket(). */
typedef int http_request_placeholder;
