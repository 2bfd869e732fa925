// executor module: see executor/CMakeLists.txt.
namespace kiln {}
