// Precompiled header for every target that uses LibTorch: the C++ frontend's nn API and ATen.
// Parsing these headers costs ~30 s per translation unit on our 2-core machines; compiled once, it is shared.
#pragma once
#include <torch/nn.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <ATen/ATen.h>
#include <string>
#include <vector>
#include <map>
#include <memory>
#include <optional>
