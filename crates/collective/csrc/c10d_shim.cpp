// A C interface to libtorch's c10d: a TCPStore for the rendezvous and a Gloo process group
// for the collectives. Every function catches C++ exceptions and returns the message.
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

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
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

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::chrono::milliseconds timeout;
};

// Copies `message` into a malloc'd string for the caller (freed by mml_c10d_free_error).
void set_error(char** err, const std::string& message) {
  if (err == nullptr) return;
  *err = static_cast<char*>(std::malloc(message.size() + 1));
  if (*err != nullptr) std::memcpy(*err, message.c_str(), message.size() + 1);
}

std::vector<at::Tensor> gather(at::Tensor** tensors, std::size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(*tensors[i]);
  return out;
}

template <typename F>
int guarded(char** err, F&& body) {
  try {
    body();
    return 0;
  } catch (const c10::Error& e) {
    set_error(err, e.what_without_backtrace());
  } catch (const std::exception& e) {
    set_error(err, e.what());
  } catch (...) {
    set_error(err, "unknown C++ exception in c10d");
  }
  return 1;
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
    c10d::TCPStoreOptions store_options;
    store_options.port = port;
    store_options.isServer = rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(world);
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), store_options);
    auto options = c10d::ProcessGroupGloo::Options::create_default(timeout);
    void* memory = ::operator new(kGlooObjectBytes);
    c10d::Backend* backend = nullptr;
    try {
      backend = new (memory) c10d::ProcessGroupGloo(store, rank, world, options);
    } catch (...) {
      ::operator delete(memory);
      throw;
    }
    auto owned = c10::intrusive_ptr<c10d::Backend>::unsafe_steal_from_new(backend);
    group = new Group{store, std::move(owned), timeout};
  });
  return group;
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

}  // extern "C"
