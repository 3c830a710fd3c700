// Small filesystem helpers shared by every library.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace clipgen {

// Writes `path` atomically: the callback writes to a temporary name in the same folder
// (".<name>.partial-<pid>"), which is renamed onto `path` only after the callback returns.
// On an exception the temporary file is removed and the exception propagates; a finished
// file is never left half-written under its final name.
std::filesystem::path temp_path_for(const std::filesystem::path& final_path);
void atomic_write_file(const std::filesystem::path& path, std::string_view bytes);
void commit_temp(const std::filesystem::path& temp, const std::filesystem::path& final_path);

std::string read_file(const std::filesystem::path& path);  // throws clipgen::Error naming the file

// Where this process's C++ runtime comes from: the file that holds std::filesystem::remove_all (dladdr),
// e.g. "/lib/x86_64-linux-gnu/libstdc++.so.6", followed by a warning when that is not a shared libstdc++
// (a static copy in the executable, or another library's copy, as PyTorch's wheels export one:
// pytorch/pytorch#133437; cmake/ClipgenDeps.cmake links libstdc++ first against it).
std::string cxx_runtime();

}  // namespace clipgen
