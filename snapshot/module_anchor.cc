// snapshot module: see snapshot/CMakeLists.txt.
namespace kiln {}
