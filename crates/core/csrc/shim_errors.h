// How mmlatent's C interfaces to libtorch report C++ exceptions: every entry point runs its body
// through `guarded`, which returns 0, or 1 with the message in *err (malloc'd; the shim's own
// free function releases it). Shared by crates/core/csrc/autocast.cpp and
// crates/collective/csrc/c10d_shim.cpp (whose build script adds this folder to its include path).
#pragma once

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

namespace mmlatent_shim {

// Copies `message` into a malloc'd string for the caller.
inline void set_error(char** err, const std::string& message) {
  if (err == nullptr) return;
  *err = static_cast<char*>(std::malloc(message.size() + 1));
  if (*err != nullptr) std::memcpy(*err, message.c_str(), message.size() + 1);
}

// Runs `body`; a C++ exception becomes 1 and its message (`where` names the shim in the message
// of an exception that carries none).
template <typename F>
int guarded(char** err, const char* where, F&& body) {
  try {
    body();
    return 0;
  } catch (const c10::Error& e) {
    set_error(err, e.what_without_backtrace());
  } catch (const std::exception& e) {
    set_error(err, e.what());
  } catch (...) {
    set_error(err, std::string("unknown C++ exception in ") + where);
  }
  return 1;
}

}  // namespace mmlatent_shim
