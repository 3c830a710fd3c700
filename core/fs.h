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

}  // namespace clipgen
