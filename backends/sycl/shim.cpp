// Host-only bridge to the SYCL runtime's kernel compiler (sycl_ext_oneapi_kernel_compiler),
// which released dpctl wheels do not expose. Built with the system C++ compiler against the
// intel-sycl-rt wheel's headers and libsycl (no -fsycl: nothing here runs on a device).
//
// Handles cross the boundary as dpctl's references: a DPCTLSyclContextRef / DPCTLSyclDeviceRef
// is a pointer to the sycl::context / sycl::device, and the returned kernel is a new
// sycl::kernel that dpctl's SyclKernel_Make takes ownership of. Every entry point catches
// everything and reports it as text, so no C++ exception reaches Python.

#define SYCL_DISABLE_FSYCL_SYCLHPP_WARNING 1
#include <sycl/sycl.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace syclex = sycl::ext::oneapi::experimental;

namespace {

char* copy_text(const std::string& text) {
    char* out = static_cast<char*>(std::malloc(text.size() + 1));
    if (out != nullptr) std::memcpy(out, text.c_str(), text.size() + 1);
    return out;
}

// Options arrive as one string, one option per line.
std::vector<std::string> split_lines(const char* text) {
    std::vector<std::string> out;
    std::string line;
    for (const char* p = text; p != nullptr && *p != '\0'; ++p) {
        if (*p == '\n') {
            if (!line.empty()) out.push_back(line);
            line.clear();
        } else {
            line += *p;
        }
    }
    if (!line.empty()) out.push_back(line);
    return out;
}

}  // namespace

extern "C" {

// The libsycl version the shim was built against (its headers), e.g. "9.0.0".
const char* tv_sycl_version() {
    static const std::string v = std::to_string(__LIBSYCL_MAJOR_VERSION) + "." +
                                 std::to_string(__LIBSYCL_MINOR_VERSION) + "." +
                                 std::to_string(__LIBSYCL_PATCH_VERSION);
    return v.c_str();
}

// Whether the device can compile SYCL source at run time.
int tv_sycl_can_compile(const void* device) {
    try {
        sycl::device dev = *static_cast<const sycl::device*>(device);
        return dev.ext_oneapi_can_build(syclex::source_language::sycl) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

// Compile SYCL `source` for one device and return the kernel named `name` (a new
// sycl::kernel*) and the built bundle serialized as SYCLBIN (malloc'ed; tv_sycl_free it).
// Returns 0 on success; otherwise the error and the compiler's log are in *log.
int tv_sycl_build(const void* context, const void* device, const char* source,
                  const char* options, const char* name, void** kernel, char** bundle,
                  size_t* bundle_size, char** log) {
    std::string text;
    *kernel = nullptr;
    *bundle = nullptr;
    *bundle_size = 0;
    try {
        const auto& ctx = *static_cast<const sycl::context*>(context);
        const auto& dev = *static_cast<const sycl::device*>(device);
        auto src = syclex::create_kernel_bundle_from_source(ctx, syclex::source_language::sycl,
                                                            std::string(source));
        auto exe = syclex::build(src, std::vector<sycl::device>{dev},
                                 syclex::properties{syclex::build_options{split_lines(options)},
                                                    syclex::save_log{&text}});
        *kernel = new sycl::kernel(exe.ext_oneapi_get_kernel(name));
        std::vector<char> content = exe.ext_oneapi_get_content();
        *bundle = static_cast<char*>(std::malloc(content.size() ? content.size() : 1));
        std::memcpy(*bundle, content.data(), content.size());
        *bundle_size = content.size();
        *log = copy_text(text);
        return 0;
    } catch (const std::exception& e) {
        *log = copy_text(std::string(e.what()) + "\n" + text);
    } catch (...) {
        *log = copy_text("unknown C++ exception\n" + text);
    }
    return 1;
}

// The kernel `name` of a SYCLBIN bundle that tv_sycl_build serialized (no compilation).
int tv_sycl_load(const void* context, const void* device, const char* bundle, size_t size,
                 const char* name, void** kernel, char** log) {
    *kernel = nullptr;
    try {
        const auto& ctx = *static_cast<const sycl::context*>(context);
        const auto& dev = *static_cast<const sycl::device*>(device);
        auto exe = syclex::get_kernel_bundle<sycl::bundle_state::executable>(
            ctx, std::vector<sycl::device>{dev},
            sycl::span<char>(const_cast<char*>(bundle), size));
        *kernel = new sycl::kernel(exe.ext_oneapi_get_kernel(name));
        *log = copy_text("");
        return 0;
    } catch (const std::exception& e) {
        *log = copy_text(e.what());
    } catch (...) {
        *log = copy_text("unknown C++ exception");
    }
    return 1;
}

// Release what a tv_sycl_* call returned through malloc.
void tv_sycl_free(void* p) { std::free(p); }

}  // extern "C"
