// Devices as tokens. The render graph holds one DeviceToken per device in a queue_node; every device
// stage pairs its work with a free token through a reserving join_node and gives the token back when
// its body ends (also on an exception). DevicePool keeps the device list and counts users, so tests
// (and a debug check in the graph) can prove a device never has two users at once.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>

namespace clipgen::pipeline {

struct Device {
  int index = 0;      // position in the pool (also the token value)
  std::string name;   // "cpu", "cuda:0", ...
  c10::Device torch_device() const { return c10::Device(name); }
};

// What circulates in the token queue.
struct DeviceToken {
  int index = 0;
};

class DevicePool {
public:
  // `names` as parse_device_list() returns them; the same name may appear twice to run two workers on
  // one device (e.g. "cpu,cpu"). Throws UsageError when empty.
  explicit DevicePool(std::vector<std::string> names);

  int size() const { return static_cast<int>(devices_.size()); }
  const Device& at(int index) const;
  const std::vector<Device>& devices() const { return devices_; }

  // Bookkeeping done by the graph around each device stage body. acquire() throws DeviceError if the
  // device already has a user (a token was duplicated — a graph bug, never expected).
  void acquire(int index);
  void release(int index);
  int active() const { return active_.load(); }
  int peak_active() const { return peak_.load(); }
  int64_t uses() const { return uses_.load(); }

  // RAII lease: acquire() now, release() on destruction.
  class Lease {
  public:
    Lease(DevicePool& pool, int index) : pool_(pool), index_(index) { pool_.acquire(index_); }
    ~Lease() { pool_.release(index_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    const Device& device() const { return pool_.at(index_); }

  private:
    DevicePool& pool_;
    int index_;
  };

private:
  std::vector<Device> devices_;
  std::unique_ptr<std::atomic<int>[]> in_use_;
  std::atomic<int> active_{0}, peak_{0};
  std::atomic<int64_t> uses_{0};
};

}  // namespace clipgen::pipeline
