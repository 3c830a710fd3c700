#include "pipeline/device_pool.h"

#include "core/error.h"

namespace clipgen::pipeline {

DevicePool::DevicePool(std::vector<std::string> names) {
  if (names.empty()) throw UsageError("no devices to render on");
  for (size_t i = 0; i < names.size(); ++i) devices_.push_back(Device{static_cast<int>(i), names[i]});
  in_use_ = std::make_unique<std::atomic<int>[]>(names.size());
  for (size_t i = 0; i < names.size(); ++i) in_use_[i] = 0;
}

const Device& DevicePool::at(int index) const {
  if (index < 0 || index >= size()) throw DeviceError("device token " + std::to_string(index) + " out of range");
  return devices_[static_cast<size_t>(index)];
}

void DevicePool::acquire(int index) {
  const auto& d = at(index);
  if (in_use_[static_cast<size_t>(index)].fetch_add(1) != 0) {
    in_use_[static_cast<size_t>(index)].fetch_sub(1);
    throw DeviceError("device " + d.name + " (token " + std::to_string(index) + ") already has a user");
  }
  const int now = active_.fetch_add(1) + 1;
  int peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  uses_.fetch_add(1);
}

void DevicePool::release(int index) {
  in_use_[static_cast<size_t>(at(index).index)].fetch_sub(1);
  active_.fetch_sub(1);
}

}  // namespace clipgen::pipeline
