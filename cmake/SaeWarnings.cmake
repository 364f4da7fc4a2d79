# Warning and sanitizer flags for libsae's own executables (tests, examples,
# benchmarks). Never attached to the sae interface target: consumers keep their flags.
add_library(sae_project_options INTERFACE)
target_compile_options(sae_project_options INTERFACE -Wall -Wextra -Wpedantic)
if(SAE_WERROR)
    target_compile_options(sae_project_options INTERFACE -Werror)
endif()
if(SAE_SANITIZE)
    target_compile_options(sae_project_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(sae_project_options INTERFACE -fsanitize=address,undefined)
    # GCC's flow analysis sees the sanitizer instrumentation and reports false
    # "may be used uninitialized" in libstdc++ (<regex> via Catch2); the uninstrumented
    # Release build still checks this warning.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
        target_compile_options(sae_project_options INTERFACE -Wno-maybe-uninitialized)
    endif()
endif()
