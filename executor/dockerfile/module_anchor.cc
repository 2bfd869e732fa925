// dockerfile module: see executor/dockerfile/CMakeLists.txt.
namespace kiln {}
