# Links libarchive statically (KILN_STATIC_LIBARCHIVE, on by default) by re-pointing the
# PkgConfig::LIBARCHIVE target every module links at Debian's libarchive.a.
#
# Why: Debian's libarchive.so needs libxml2 (for the xar format) and so ICU: 35 MB of the 63 MB
# kiln image, for a format kiln never reads or writes. From a static archive the linker takes only
# the objects kiln references — the tar/pax/ustar reader and writer, the "raw" reader and the
# decompression filters — and so only the libraries those need: zlib, bzip2, xz, lz4 and zstd.
# cmake/libarchive_write_filetype.c keeps the writer table (every format) out; see there.
#
# Needs the -dev packages of those libraries (scripts/setup.sh installs them).
option(KILN_STATIC_LIBARCHIVE "Link libarchive statically: only its tar code, no libxml2/ICU" ON)

if(KILN_STATIC_LIBARCHIVE)
  find_library(KILN_LIBARCHIVE_STATIC NAMES libarchive.a HINTS ${LIBARCHIVE_LIBRARY_DIRS} REQUIRED)
  find_package(BZip2 REQUIRED)
  find_package(LibLZMA REQUIRED)
  pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
  # An object library, linked as objects: an object file is always taken, so it defines the helper
  # before the linker scans libarchive.a (an archive member would come too late).
  add_library(kiln_libarchive_shim OBJECT ${CMAKE_CURRENT_LIST_DIR}/libarchive_write_filetype.c)
  target_include_directories(kiln_libarchive_shim PRIVATE ${LIBARCHIVE_INCLUDE_DIRS})
  set_target_properties(kiln_libarchive_shim PROPERTIES POSITION_INDEPENDENT_CODE ON)
  set_target_properties(PkgConfig::LIBARCHIVE PROPERTIES
    INTERFACE_LINK_LIBRARIES "$<TARGET_OBJECTS:kiln_libarchive_shim>;${KILN_LIBARCHIVE_STATIC};BZip2::BZip2;LibLZMA::LibLZMA;PkgConfig::LZ4;PkgConfig::ZSTD;PkgConfig::ZLIB"
    INTERFACE_LINK_DIRECTORIES ""
    INTERFACE_LINK_OPTIONS "")
  message(STATUS "libarchive: static (${KILN_LIBARCHIVE_STATIC})")
endif()
