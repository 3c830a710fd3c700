# Every dependency comes from a Debian 12 package. A missing one stops CMake and names the package.
include_guard(GLOBAL)
find_package(PkgConfig QUIET)

macro(clipgen_require found what pkg)
  if(NOT ${found})
    message(FATAL_ERROR "clipgen: ${what} not found. Install it with: apt-get install ${pkg}  (or run scripts/setup.sh)")
  endif()
endmacro()

if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "clipgen: pkg-config not found. Install it with: apt-get install pkg-config")
endif()

# LibTorch: Debian's libtorch-dev (1.13, CPU) or a CUDA LibTorch 2.x given with -DCMAKE_PREFIX_PATH.
find_package(Torch QUIET)
clipgen_require(Torch_FOUND "LibTorch" "libtorch-dev")
# Debian's TorchConfig adds flags to CMAKE_CXX_FLAGS; keep ours.
set(CLIPGEN_TORCH_LIBS ${TORCH_LIBRARIES})
# PyTorch's wheels (2.5 and later) export from libtorch_cpu.so a statically linked copy of parts of
# libstdc++, std::filesystem among them (pytorch/pytorch#133437). A program that needs libtorch before
# libstdc++ binds some std::filesystem calls to that copy and the rest to libstdc++: built against the
# torch 2.11 wheel on the GPU machine, std::filesystem::remove_all of a non-empty folder crashed. So
# libstdc++ is the first shared library every clipgen program and library needs, and the dynamic linker
# finds its symbols before anyone's copy (checked by tests/core/test_libstdcxx_first.cpp). Named by its
# file, libstdc++.so.6, not -lstdc++: a toolchain without the unversioned libstdc++.so link name (as the
# GPU machine's g++ 13 behaved) quietly links the static libstdc++.a instead, a third copy in the process.
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_link_options("LINKER:--push-state,--no-as-needed" "-l:libstdc++.so.6" "LINKER:--pop-state")
endif()

find_package(TBB QUIET)
clipgen_require(TBB_FOUND "oneTBB" "libtbb-dev")
find_package(yaml-cpp QUIET)
clipgen_require(yaml-cpp_FOUND "yaml-cpp" "libyaml-cpp-dev")
find_package(fmt QUIET)
clipgen_require(fmt_FOUND "fmt" "libfmt-dev")
find_package(spdlog QUIET)
clipgen_require(spdlog_FOUND "spdlog" "libspdlog-dev")
find_package(nlohmann_json 3 QUIET)
clipgen_require(nlohmann_json_FOUND "nlohmann-json" "nlohmann-json3-dev")
find_package(CLI11 QUIET)
clipgen_require(CLI11_FOUND "CLI11" "libcli11-dev")
find_package(Threads REQUIRED)

foreach(lib avcodec avformat avfilter avutil swscale swresample)
  string(TOUPPER ${lib} LIBU)
  pkg_check_modules(${LIBU} QUIET IMPORTED_TARGET lib${lib})
  clipgen_require(${LIBU}_FOUND "lib${lib}" "lib${lib}-dev")
endforeach()
# fontconfig: the contact sheet looks up DejaVu Sans (fonts-dejavu-core) through it when not at a known path.
pkg_check_modules(FONTCONFIG QUIET IMPORTED_TARGET fontconfig)
clipgen_require(FONTCONFIG_FOUND "fontconfig" "libfontconfig-dev")
add_library(clipgen_libav INTERFACE)
target_link_libraries(clipgen_libav INTERFACE PkgConfig::AVCODEC PkgConfig::AVFORMAT PkgConfig::AVFILTER
  PkgConfig::AVUTIL PkgConfig::SWSCALE PkgConfig::SWRESAMPLE)

if(CLIPGEN_BUILD_TESTS)
  find_package(GTest QUIET)
  clipgen_require(GTest_FOUND "GoogleTest" "libgtest-dev libgmock-dev")
endif()

# One precompiled header with the LibTorch API, shared by every torch-using target with the same flags.
function(clipgen_torch_pch target)
  if(TARGET clipgen_torch_pch_host AND NOT target STREQUAL clipgen_torch_pch_host)
    target_precompile_headers(${target} REUSE_FROM clipgen_torch_pch_host)
  else()
    target_precompile_headers(${target} PRIVATE ${PROJECT_SOURCE_DIR}/core/torch_pch.h)
  endif()
endfunction()
