// A C interface to libtorch's c10d: a TCPStore for the rendezvous, a Gloo (or NCCL) process group
// for the collectives, and DDP's Reducer, which all-reduces gradient buckets during the backward
// pass. Every function catches C++ exceptions and returns the message.
//
// Why ProcessGroupGloo is declared here instead of included: its header includes Gloo's
// headers, which neither the PyTorch wheel nor a Debian package of a matching version ships.
// The class itself is compiled into libtorch_cpu.so, so this file declares the three members
// it calls (Options::create_default, the constructor, the destructor) with their exact
// signatures; the linker resolves them to libtorch's own symbols, and a wrong declaration
// fails to link. The object is then used only through c10d::Backend, whose header is
// shipped. Two rules keep this sound:
//  - nothing here may define a member of the declared classes, or need their vtables or
//    type information (no construction except through the declared constructor, no
//    dynamic_cast, no typeid);
//  - the memory the constructor runs in comes from kGlooObjectBytes, far more than the
//    488 bytes of sizeof(ProcessGroupGloo) in PyTorch 2.11.0 (the size libtorch itself
//    allocates for one in ProcessGroupGloo::split). It is released by libtorch's own
//    deleting destructor through Backend's virtual destructor (operator delete ignores
//    the size with the default allocator).
//
// The NCCL group (GPUs) is reached the same way, with one more step: ProcessGroupNCCL lives in
// libtorch_cuda.so, which the binary does not link (it is loaded at run time when a CUDA device
// is asked for, and a CPU-only libtorch has none), so its constructors are looked up with dlsym
// by their mangled names and called through pointers of their exact signatures. Their objects
// get kNcclObjectBytes / kNcclOptionsBytes, far above sizeof(ProcessGroupNCCL) = 1112 in
// PyTorch 2.11.0 (allocated by ProcessGroupNCCL::split) and its small Options.

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <dlfcn.h>

#include "shim_errors.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace c10d {
class TORCH_API ProcessGroupGloo : public Backend {
 public:
  struct TORCH_API Options : public Backend::Options {
    ~Options() override;
    static c10::intrusive_ptr<Options> create_default(std::chrono::milliseconds timeout);
  };
  explicit ProcessGroupGloo(const c10::intrusive_ptr<Store>& store, int rank, int size,
                            c10::intrusive_ptr<Options> options);
  ~ProcessGroupGloo() override;
};
}  // namespace c10d

namespace {

constexpr std::size_t kGlooObjectBytes = 8192;
constexpr std::size_t kNcclObjectBytes = 16384;
constexpr std::size_t kNcclOptionsBytes = 4096;

// ProcessGroupNCCL::Options as far as this file needs it: the Backend::Options it starts with
// (its timeout). Never constructed here, only through libtorch_cuda's constructor.
struct NcclOptions : c10d::Backend::Options {
  ~NcclOptions() override;
};

// The entry points of libtorch_cuda.so (PyTorch 2.11.0), by mangled name.
constexpr const char* kNcclOptionsCtor = "_ZN4c10d16ProcessGroupNCCL7OptionsC1Eb";
constexpr const char* kNcclCtor =
    "_ZN4c10d16ProcessGroupNCCLC1EN3c1013intrusive_ptrINS_5StoreENS1_6detail34intrusive_target_"
    "default_null_typeIS3_EEEEiiNS2_INS0_7OptionsENS5_IS8_EEEE";
using NcclOptionsCtor = void (*)(void* self, bool is_high_priority_stream);
using NcclCtor = void (*)(void* self, c10::intrusive_ptr<c10d::Store> store, int rank, int size,
                          c10::intrusive_ptr<NcclOptions> options);
using CudaSetDevice = int (*)(int device);

struct NcclEntryPoints {
  NcclOptionsCtor options_ctor;
  NcclCtor ctor;
  CudaSetDevice set_device;
};

// Looks the entry points up in the libraries loaded so far (libtorch_cuda.so must be).
NcclEntryPoints nccl_entry_points() {
  NcclEntryPoints e{reinterpret_cast<NcclOptionsCtor>(dlsym(RTLD_DEFAULT, kNcclOptionsCtor)),
                    reinterpret_cast<NcclCtor>(dlsym(RTLD_DEFAULT, kNcclCtor)),
                    reinterpret_cast<CudaSetDevice>(dlsym(RTLD_DEFAULT, "cudaSetDevice"))};
  if (e.options_ctor == nullptr || e.ctor == nullptr || e.set_device == nullptr) {
    throw std::runtime_error(
        "libtorch's NCCL process group is not available: libtorch_cuda.so is not loaded, or it is not "
        "the PyTorch 2.11.0 build this shim was written for");
  }
  return e;
}

c10::intrusive_ptr<c10d::Store> make_store(const char* host, uint16_t port, int rank, int world,
                                           std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions store_options;
  store_options.port = port;
  store_options.isServer = rank == 0;
  store_options.numWorkers = static_cast<std::size_t>(world);
  store_options.waitWorkers = true;
  store_options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(std::string(host), store_options);
}

// Runs `construct(memory)` in `bytes` of fresh memory, released again if it throws.
template <typename T, typename F>
T* construct_in(std::size_t bytes, F&& construct) {
  void* memory = ::operator new(bytes);
  try {
    construct(memory);
  } catch (...) {
    ::operator delete(memory);
    throw;
  }
  return static_cast<T*>(memory);
}

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::chrono::milliseconds timeout;
  // The same backend behind the ProcessGroup front that DDP's Reducer talks to (its collectives
  // go through the dispatcher's c10d ops to `backend`), made when the first reducer is.
  c10::intrusive_ptr<c10d::ProcessGroup> process_group;
  c10::DeviceType device_type;
  c10d::ProcessGroup::BackendType backend_type;
};

// Passes warnings on to `next`, except the Reducer's advice to turn find_unused_parameters off
// when a step used every parameter: here unused parameters depend on the subsets each rank
// draws, so the flag stays on and the advice would only alarm.
class WithoutUnusedParameterAdvice : public c10::WarningHandler {
 public:
  explicit WithoutUnusedParameterAdvice(c10::WarningHandler* next) : next_(next) {}
  void process(const c10::Warning& warning) override {
    if (warning.msg().find("find_unused_parameters=True") == std::string::npos) next_->process(warning);
  }

 private:
  c10::WarningHandler* next_;
};

// DDP's gradient reducer over one optimiser's parameters.
struct GradientReducer {
  std::vector<at::Tensor> params;
  std::unique_ptr<c10d::Reducer> reducer;
};

using mmlatent_shim::set_error;

std::vector<at::Tensor> gather(at::Tensor** tensors, std::size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(*tensors[i]);
  return out;
}

// Errors are returned as a message freed by mml_c10d_free_error.
template <typename F>
int guarded(char** err, F&& body) {
  return mmlatent_shim::guarded(err, "c10d", body);
}

}  // namespace

extern "C" {

// Joins the job: rank 0 serves the TCPStore on `port`, every rank connects to host:port, and
// the Gloo group connects all ranks to each other. Both wait at most `timeout_ms`.
void* mml_c10d_group_new(const char* host, uint16_t port, int rank, int world, int64_t timeout_ms,
                         char** err) {
  Group* group = nullptr;
  guarded(err, [&] {
    const std::chrono::milliseconds timeout(timeout_ms);
    auto store = make_store(host, port, rank, world, timeout);
    auto options = c10d::ProcessGroupGloo::Options::create_default(timeout);
    auto* backend = construct_in<c10d::Backend>(kGlooObjectBytes, [&](void* memory) {
      new (memory) c10d::ProcessGroupGloo(store, rank, world, options);
    });
    auto owned = c10::intrusive_ptr<c10d::Backend>::unsafe_steal_from_new(backend);
    group = new Group{store, std::move(owned), timeout, {}, c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO};
  });
  return group;
}

// The same with an NCCL group on CUDA device `device` (which becomes this thread's current one).
void* mml_c10d_group_new_nccl(const char* host, uint16_t port, int rank, int world, int64_t timeout_ms,
                              int device, char** err) {
  Group* group = nullptr;
  guarded(err, [&] {
    const std::chrono::milliseconds timeout(timeout_ms);
    auto nccl = nccl_entry_points();
    if (int code = nccl.set_device(device); code != 0) {
      throw std::runtime_error("cudaSetDevice(" + std::to_string(device) + ") failed with CUDA error " +
                               std::to_string(code));
    }
    auto store = make_store(host, port, rank, world, timeout);
    auto* options = construct_in<NcclOptions>(kNcclOptionsBytes, [&](void* memory) { nccl.options_ctor(memory, false); });
    auto owned_options = c10::intrusive_ptr<NcclOptions>::unsafe_steal_from_new(options);
    owned_options->timeout = timeout;
    auto* backend = construct_in<c10d::Backend>(kNcclObjectBytes, [&](void* memory) {
      nccl.ctor(memory, store, rank, world, owned_options);
    });
    auto owned = c10::intrusive_ptr<c10d::Backend>::unsafe_steal_from_new(backend);
    group = new Group{store, std::move(owned), timeout, {}, c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL};
  });
  return group;
}

// 0 when the NCCL entry points resolve (libtorch_cuda.so loaded), else 1 with the reason.
int mml_c10d_nccl_available(char** err) {
  return guarded(err, [] { nccl_entry_points(); });
}

void mml_c10d_group_free(void* group) { delete static_cast<Group*>(group); }

void mml_c10d_free_error(char* err) { std::free(err); }

// Sums `tensors` (in place) over all ranks. (A list given to one Gloo call means one tensor
// per device, all of one size; separate tensors take separate calls, queued before waiting.)
int mml_c10d_all_reduce_sum(void* group, at::Tensor** tensors, std::size_t n, char** err) {
  return guarded(err, [&] {
    auto* g = static_cast<Group*>(group);
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    std::vector<c10::intrusive_ptr<c10d::Work>> pending;
    for (auto& t : gather(tensors, n)) {
      std::vector<at::Tensor> one{t};
      pending.push_back(g->backend->allreduce(one, options));
    }
    for (auto& work : pending) work->wait(g->timeout);
  });
}

// Replaces `tensors` (in place) on every rank with those of rank `root`.
int mml_c10d_broadcast(void* group, at::Tensor** tensors, std::size_t n, int root, char** err) {
  return guarded(err, [&] {
    auto* g = static_cast<Group*>(group);
    c10d::BroadcastOptions options;
    options.rootRank = root;
    options.rootTensor = 0;
    std::vector<c10::intrusive_ptr<c10d::Work>> pending;
    for (auto& t : gather(tensors, n)) {
      std::vector<at::Tensor> one{t};
      pending.push_back(g->backend->broadcast(one, options));
    }
    for (auto& work : pending) work->wait(g->timeout);
  });
}

// Returns once every rank has called it.
int mml_c10d_barrier(void* group, char** err) {
  return guarded(err, [&] {
    auto* g = static_cast<Group*>(group);
    g->backend->barrier(c10d::BarrierOptions())->wait(g->timeout);
  });
}

// The backend's name ("gloo"), to check that the object is what it is declared to be.
int mml_c10d_backend_name(void* group, char* out, std::size_t capacity, char** err) {
  return guarded(err, [&] {
    auto name = static_cast<Group*>(group)->backend->getBackendName();
    std::snprintf(out, capacity, "%s", name.c_str());
  });
}

// The order in which a backward pass from `loss` makes the gradients of `params` ready, as a
// permutation written to `order`: the autograd engine runs the ready node with the highest
// sequence number first (the one created last in the forward pass), and a parameter's gradient
// is accumulated as soon as the last node feeding it has run, so parameters are sorted by the
// highest sequence number among the nodes that feed them. Parameters the loss does not reach
// come last, in the order given.
int mml_autograd_ready_order(at::Tensor* loss, at::Tensor** params, std::size_t n, int64_t* order, char** err) {
  return guarded(err, [&] {
    std::unordered_map<const torch::autograd::Node*, std::size_t> index_of;
    for (std::size_t i = 0; i < n; ++i) {
      if (auto acc = torch::autograd::impl::try_get_grad_accumulator(*params[i])) index_of[acc.get()] = i;
    }
    std::vector<int64_t> feeder(n, -1);  // highest sequence number of a node feeding parameter i
    std::vector<torch::autograd::Node*> stack;
    std::unordered_set<torch::autograd::Node*> seen;
    if (auto root = loss->grad_fn()) stack.push_back(root.get());
    while (!stack.empty()) {
      auto* node = stack.back();
      stack.pop_back();
      if (!seen.insert(node).second) continue;
      for (const auto& edge : node->next_edges()) {
        if (!edge.function) continue;
        if (auto it = index_of.find(edge.function.get()); it != index_of.end()) {
          auto& f = feeder[it->second];
          f = std::max<int64_t>(f, static_cast<int64_t>(node->sequence_nr()));
        }
        stack.push_back(edge.function.get());
      }
    }
    std::vector<int64_t> perm(n);
    for (std::size_t i = 0; i < n; ++i) perm[i] = static_cast<int64_t>(i);
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return feeder[a] > feeder[b]; });
    std::copy(perm.begin(), perm.end(), order);
  });
}

// libtorch's own DDP Reducer over `params`, in buckets of about `bucket_bytes` (the first of
// `first_bucket_bytes`, so that communication starts early) filled in the order `order` (every
// rank must pass the same). Its hooks on the parameters' gradient accumulators copy each gradient,
// divided by the world size, into its bucket as the backward pass produces it, and all-reduce a
// bucket as soon as it is full, while the backward pass goes on; parameters a rank's graph does
// not reach count as zeros there (find_unused_parameters). See mml_c10d_reducer_backward.
void* mml_c10d_reducer_new(void* group, at::Tensor** params, std::size_t n, const int64_t* order,
                           int64_t bucket_bytes, int64_t first_bucket_bytes, char** err) {
  GradientReducer* out = nullptr;
  guarded(err, [&] {
    auto* g = static_cast<Group*>(group);
    if (!g->process_group) {
      auto pg = c10::make_intrusive<c10d::ProcessGroup>(g->store, g->backend->getRank(), g->backend->getSize());
      pg->setDefaultBackend(g->backend_type);
      pg->setBackend(g->device_type, g->backend_type, g->backend);
      g->process_group = pg;
    }
    std::vector<at::Tensor> ordered;
    ordered.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (order[i] < 0 || static_cast<std::size_t>(order[i]) >= n) throw std::runtime_error("bad parameter order");
      ordered.push_back(*params[order[i]]);
    }
    auto [buckets, limits] = c10d::compute_bucket_assignment_by_size(
        ordered, {static_cast<std::size_t>(first_bucket_bytes), static_cast<std::size_t>(bucket_bytes)});
    auto reducer = std::make_unique<c10d::Reducer>(
        ordered, std::move(buckets), g->process_group, std::vector<bool>(n, false), bucket_bytes,
        /*find_unused_parameters=*/true, /*gradient_as_bucket_view=*/false,
        std::unordered_map<std::size_t, std::string>{}, first_bucket_bytes,
        /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false, std::vector<int64_t>{});
    out = new GradientReducer{std::move(ordered), std::move(reducer)};
  });
  return out;
}

// Back-propagates `loss` to the reducer's parameters only (others get no gradient), with the
// all-reduce of each bucket overlapping the rest of the pass. On return every parameter's .grad
// holds the mean over the ranks of their gradients; one that no rank's graph reached has none.
int mml_c10d_reducer_backward(void* reducer, at::Tensor* loss, char** err) {
  return guarded(err, [&] {
    auto* r = static_cast<GradientReducer*>(reducer);
    // Fresh gradients: accumulation would add this step's into the last step's.
    for (auto& p : r->params) p.mutable_grad().reset();
    r->reducer->prepare_for_forward();
    {
      WithoutUnusedParameterAdvice quiet(c10::WarningUtils::get_warning_handler());
      c10::WarningUtils::WarningHandlerGuard guard(&quiet);
      r->reducer->prepare_for_backward({*loss});
    }
    torch::autograd::backward({*loss}, {}, /*retain_graph=*/false, /*create_graph=*/false, r->params);
  });
}

// The Reducer's destructor may throw (it checks its hooks); nothing is left to report then.
void mml_c10d_reducer_free(void* reducer) {
  try {
    delete static_cast<GradientReducer*>(reducer);
  } catch (...) {
  }
}

}  // extern "C"
