#include "core/error.h"

namespace clipgen {

Error& Error::add_context(const std::string& ctx) {
  contexts_.insert(contexts_.begin(), ctx);
  message_ = ctx + ": " + message_;
  return *this;
}

static std::string located(const std::string& file, int line, int column, const std::string& message) {
  std::string s = file;
  if (line > 0) {
    s += ":" + std::to_string(line);
    if (column > 0) s += ":" + std::to_string(column);
  }
  return s + ": " + message;
}

ConfigError::ConfigError(const std::string& file, int line, int column, const std::string& message)
    : Error(located(file, line, column, message)), file_(file), line_(line), column_(column) {}

static std::string load_message(const std::string& file, const std::string& tensor, const std::string& message) {
  std::string s = file;
  if (!tensor.empty()) s += ": tensor '" + tensor + "'";
  return s + ": " + message;
}

ModelLoadError::ModelLoadError(const std::string& file, const std::string& tensor, const std::string& message)
    : Error(load_message(file, tensor, message)), file_(file), tensor_(tensor) {}

}  // namespace clipgen
