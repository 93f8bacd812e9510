# node-gyp build of the addon (see README "Node.js"):
#   ./scripts/build.sh && npx node-gyp rebuild --nodedir=/usr --directory=bindings/node
# Links the engine statically (build/libwirehub.a, built PIC), so the addon
# needs only libssl3 and zlib1g at run time, present on every Debian system.
# WIREHUB_BUILD_DIR picks another engine build tree.
{
  "variables": {
    "wh_build": "<!(node -p \"require('path').resolve(process.env.WIREHUB_BUILD_DIR || '../../build')\")",
    "wh_root": "<!(node -p \"require('path').resolve('../..')\")"
  },
  "targets": [
    {
      "target_name": "wirehub",
      "sources": ["wirehub_node.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<(wh_root)/capi"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-fvisibility=hidden"],
      "libraries": [
        "<(wh_build)/libwirehub.a",
        "-lssl", "-lcrypto", "-lz", "-lpthread",
        "-Wl,--exclude-libs,ALL",
        "-Wl,--version-script=<(wh_root)/cmake/node_addon.map",
        "-static-libstdc++"
      ]
    }
  ]
}
