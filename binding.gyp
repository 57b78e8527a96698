{
  "variables": {
    "ws_native_werror%": "<!(node -p \"process.env.WS_NATIVE_WERROR === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "ws_native",
      "sources": [
        "src/napi/module.c",
        "src/napi/connections.c",
        "src/napi/helpers.c",
        "src/napi/receive.c",
        "src/napi/send.c",
        "src/napi/jobs.c",
        "src/napi/parking.c",
        "src/napi/upgrade.c",
        "src/napi/native_transport.c",
        "src/napi/native_receive.c",
        "src/napi/native_listener.c",
        "src/napi/poller_uv.c",
        "src/transport/socket.c",
        "src/transport/poller_epoll.c",
        "src/transport/listener.c",
        "src/engine/conn.c",
        "src/engine/random.c",
        "src/codec/accept.c",
        "src/codec/base64.c",
        "src/codec/close_code.c",
        "src/codec/deflate.c",
        "src/codec/frame.c",
        "src/codec/http_request.c",
        "src/codec/mask.c",
        "src/codec/sha1.c",
        "src/codec/utf8.c"
      ],
      "include_dirs": ["src"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=c11", "-O3", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags!": ["-fno-exceptions"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-std=c11", "-O3", "-Wall", "-Wextra"]
      },
      "conditions": [
        ["ws_native_werror==1", {
          "cflags": ["-Werror"],
          "xcode_settings": {"OTHER_CFLAGS": ["-Werror"]}
        }]
      ]
    }
  ]
}
