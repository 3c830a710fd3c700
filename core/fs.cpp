#include "core/fs.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace clipgen {

std::filesystem::path temp_path_for(const std::filesystem::path& final_path) {
  auto name = "." + final_path.filename().string() + ".partial-" + std::to_string(::getpid());
  return final_path.parent_path() / name;
}

void commit_temp(const std::filesystem::path& temp, const std::filesystem::path& final_path) {
  std::error_code ec;
  std::filesystem::rename(temp, final_path, ec);
  if (ec) {
    const std::string reason = ec.message();
    std::filesystem::remove(temp, ec);
    throw Error("cannot rename " + temp.string() + " to " + final_path.string() + ": " + reason);
  }
}

void atomic_write_file(const std::filesystem::path& path, std::string_view bytes) {
  auto tmp = temp_path_for(path);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot write " + tmp.string());
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    if (!f) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw Error("write failed: " + tmp.string());
    }
  }
  commit_temp(tmp, path);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path.string() + ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string cxx_runtime() {
  const auto fn = static_cast<std::uintmax_t (*)(const std::filesystem::path&)>(&std::filesystem::remove_all);
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(fn), &info) == 0 || info.dli_fname == nullptr) return "unknown";
  const std::string file = info.dli_fname;
  if (file.find("libstdc++.so") != std::string::npos) return file;
  return file + " — WARNING: std::filesystem does not come from the shared libstdc++ (see docs/device.md)";
}

}  // namespace clipgen
