#pragma once
namespace clipgen {
// Set by CMake from project(VERSION) and `git describe` at configure time.
const char* version_string();
}  // namespace clipgen
