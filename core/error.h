// clipgen's one error hierarchy. Inner code throws with the facts; outer code adds context
// (shot, stage) with add_context() and rethrows; cli/main.cpp is the single catch site and maps
// the type to an exit code (see exit_code()).
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace clipgen {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string& what) : std::runtime_error(what), message_(what) {}
  // Prepends "context: " to the message, e.g. add_context("shot 'intro', stage keyframes").
  Error& add_context(const std::string& ctx);
  const char* what() const noexcept override { return message_.c_str(); }
  const std::vector<std::string>& contexts() const { return contexts_; }
  // Process exit code for this error: 2 for usage/config errors, 1 for runtime failures.
  virtual int exit_code() const { return 1; }

private:
  std::string message_;
  std::vector<std::string> contexts_;
};

// A shot file or preset problem. `what()` is "file:line:col: message" (line/col 1-based, 0 = unknown).
class ConfigError : public Error {
public:
  ConfigError(const std::string& file, int line, int column, const std::string& message);
  // Several problems reported at once (all errors of a file, one per line).
  explicit ConfigError(const std::string& joined_messages) : Error(joined_messages) {}
  int exit_code() const override { return 2; }
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  int column() const { return column_; }

private:
  std::string file_;
  int line_ = 0;
  int column_ = 0;
};

// Bad command-line usage.
class UsageError : public Error {
public:
  using Error::Error;
  int exit_code() const override { return 2; }
};

// Weights could not be read or bound. `what()` names the file and, where known, the tensor.
class ModelLoadError : public Error {
public:
  ModelLoadError(const std::string& file, const std::string& tensor, const std::string& message);
  const std::string& file() const { return file_; }
  const std::string& tensor() const { return tensor_; }

private:
  std::string file_, tensor_;
};

// A model config value clipgen does not support (names the key).
class UnsupportedError : public Error {
public:
  using Error::Error;
};

class EncodeError : public Error {
public:
  using Error::Error;
};

class DeviceError : public Error {
public:
  using Error::Error;
};

// The run was cancelled (SIGINT/SIGTERM or a failure elsewhere in the graph).
class CancelledError : public Error {
public:
  CancelledError() : Error("cancelled") {}
  int exit_code() const override { return 130; }
};

}  // namespace clipgen
