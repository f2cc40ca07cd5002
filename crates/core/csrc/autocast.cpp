// A C interface to libtorch's autocast (ATen/autocast_mode.h) for the CPU and CUDA device types,
// which tch reaches only through the CUDA-only `at::autocast::set_enabled`. Autocast state is
// per thread: these calls change the calling thread's only. Every function catches C++
// exceptions and returns the message.

#include <ATen/autocast_mode.h>

#include "shim_errors.h"

namespace {

const at::DeviceType kDevices[] = {at::kCPU, at::kCUDA};

template <typename F>
int guarded(char** err, F&& body) {
  return mmlatent_shim::guarded(err, "autocast", body);
}

}  // namespace

extern "C" {

// Enters an autocast region in bf16 on both device types: `*was` receives whether autocast was
// on before (bit 0: CPU, bit 1: CUDA), which mml_autocast_exit restores.
int mml_autocast_enter(int* was, char** err) {
  return guarded(err, [&] {
    int before = 0;
    for (int i = 0; i < 2; ++i) {
      if (at::autocast::is_autocast_enabled(kDevices[i])) before |= 1 << i;
      at::autocast::set_autocast_dtype(kDevices[i], at::kBFloat16);
      at::autocast::set_autocast_enabled(kDevices[i], true);
    }
    at::autocast::increment_nesting();
    *was = before;
  });
}

// Leaves the region: the cast copies of the weights are dropped when the outermost region ends
// (the optimiser changes the weights in place, so a kept copy would be stale at the next step).
int mml_autocast_exit(int was, char** err) {
  return guarded(err, [&] {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    for (int i = 0; i < 2; ++i) at::autocast::set_autocast_enabled(kDevices[i], (was >> i) & 1);
  });
}

// Switches autocast on both device types to `on` (bit 0: CPU, bit 1: CUDA) without touching the
// nesting; returns the previous state in *was. For full-precision work inside a region.
int mml_autocast_set(int on, int* was, char** err) {
  return guarded(err, [&] {
    int before = 0;
    for (int i = 0; i < 2; ++i) {
      if (at::autocast::is_autocast_enabled(kDevices[i])) before |= 1 << i;
      at::autocast::set_autocast_enabled(kDevices[i], (on >> i) & 1);
    }
    *was = before;
  });
}

// Drops the calling thread's cast copies of the weights (after an update in place).
int mml_autocast_clear_cache(char** err) {
  return guarded(err, [] { at::autocast::clear_cache(); });
}

void mml_autocast_free_error(char* err) { std::free(err); }

}  // extern "C"
