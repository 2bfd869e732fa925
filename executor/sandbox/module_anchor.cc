// sandbox module: see executor/sandbox/CMakeLists.txt.
namespace kiln {}
