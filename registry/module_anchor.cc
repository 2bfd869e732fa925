// registry module: see registry/CMakeLists.txt.
namespace kiln {}
