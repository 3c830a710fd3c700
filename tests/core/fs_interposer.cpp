// A shared library that, like PyTorch's wheel builds of libtorch_cpu.so (pytorch/pytorch#133437), exports
// its own std::filesystem::remove_all. This one removes nothing and returns a sentinel, so a program whose
// call binds here instead of to libstdc++ shows it (tests/core/test_libstdcxx_first.cpp).
#include <cstdint>
#include <filesystem>

namespace std::filesystem {
std::uintmax_t remove_all(const path&) { return 424242; }
}  // namespace std::filesystem

extern "C" int clipgen_fs_interposer_loaded() { return 1; }
