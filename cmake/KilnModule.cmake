# kiln_module(NAME [SUBDIRS ...] PUBLIC_DEPS ... PRIVATE_DEPS ...)
# One static library per module from every *.cc in the calling directory and the named
# sub-directories (tests excluded), so that several people can add files to a module without editing
# its list. Includes are rooted at the repo.
function(kiln_module name)
  cmake_parse_arguments(M "" "" "SUBDIRS;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  foreach(sub ${M_SUBDIRS})
    file(GLOB sub_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${sub}/*.cc)
    list(APPEND srcs ${sub_srcs})
  endforeach()
  list(FILTER srcs EXCLUDE REGEX "_test\\.cc$|_fuzz\\.cc$")
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${M_PUBLIC_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  kiln_use_pch(${name} kiln_pch_lib)
endfunction()

# kiln_test_dir(LIBS ...): every *_test.cc in the calling directory becomes one gtest binary named
# <dir>_<file>, linked to LIBS.
function(kiln_test_dir)
  cmake_parse_arguments(T "" "" "LIBS" ${ARGN})
  get_filename_component(dir ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  foreach(src ${tests})
    get_filename_component(base ${src} NAME_WE)
    kiln_add_test(${dir}_${base} SOURCES ${src} LIBS ${T_LIBS})
  endforeach()
endfunction()
