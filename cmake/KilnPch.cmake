# Precompiled headers (option KILN_PCH, default ON): the heavy headers are parsed once per group
# instead of once per source file. Three groups, each compiled once in a small donor target and
# reused (REUSE_FROM) by every target of the group:
#   kiln_pch_lib   the libraries (kiln_module) and kiln_testing: common STL headers only
#   kiln_pch_cmd   the kiln executable (cmd/): the STL headers + nlohmann/json + CLI11
#   kiln_pch_test  every gtest executable: the STL headers + nlohmann/json + gtest
# nlohmann/json is left out of the libraries' PCH and gmock out of the tests': few of those files
# include them (about 1 in 8 and 6 of 114) and loading a bigger PCH costs every other file more than
# it saves the few (measured: a library file without json took ~1 s longer with json in its PCH).
# A reused PCH must be compiled with the consumers' flags: the donors get the global flags and link
# the same header-only targets as their consumers (extra -D's of a consumer are fine: none of them
# is used by these headers). With KILN_PCH=OFF nothing is precompiled (that build also catches a
# source file that forgot an #include the PCH would otherwise provide).
#
# With ccache as compiler launcher (-DCMAKE_CXX_COMPILER_LAUNCHER=ccache), ccache only caches
# compiles that use or make a PCH with the sloppiness below; kiln's launcher sets it for kiln's
# build only (the ccache config is left alone).

set(KILN_PCH_STL
  <algorithm> <atomic> <chrono> <cstdint> <cstring> <filesystem> <fstream> <functional> <map>
  <memory> <mutex> <optional> <set> <sstream> <string> <string_view> <thread> <utility> <vector>)

if(KILN_PCH AND CMAKE_CXX_COMPILER_LAUNCHER MATCHES "(^|/)ccache$")
  # A normal variable shadowing the cache entry: every target's launcher gets the sloppiness.
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      ${CMAKE_CXX_COMPILER_LAUNCHER})
endif()

# kiln_pch_donor(NAME LIBS <header-only targets...> HEADERS <headers...>)
function(kiln_pch_donor name)
  if(NOT KILN_PCH)
    return()
  endif()
  cmake_parse_arguments(P "" "" "LIBS;HEADERS" ${ARGN})
  set(src ${CMAKE_CURRENT_BINARY_DIR}/${name}.cc)
  file(CONFIGURE OUTPUT ${src} CONTENT "// The donor of the ${name} precompiled header (cmake/KilnPch.cmake).\n")
  add_library(${name} OBJECT ${src})
  target_link_libraries(${name} PRIVATE ${P_LIBS})
  target_precompile_headers(${name} PRIVATE ${P_HEADERS})
endfunction()

# kiln_use_pch(TARGET DONOR): TARGET's sources include DONOR's precompiled header.
# g++ 12 loses the "system header" mark of code loaded from a PCH, so its known false positives
# inside libstdc++ (-Warray-bounds, -Wstringop-overflow and -Wstringop-overread on std::string's
# memcpy in bits/char_traits.h: silent without a PCH) would be printed for our files; these three are
# off for g++ PCH builds (KILN_PCH=OFF and clang builds keep them).
function(kiln_use_pch target donor)
  if(KILN_PCH)
    target_precompile_headers(${target} REUSE_FROM ${donor})
    target_compile_options(${target} PRIVATE "$<$<CXX_COMPILER_ID:GNU>:-Wno-array-bounds;-Wno-stringop-overflow;-Wno-stringop-overread>")
  endif()
endfunction()
