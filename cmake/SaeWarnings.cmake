# Warning and sanitizer flags for libsae's own executables (tests, examples,
# benchmarks). Never attached to the sae interface target: consumers keep their flags.
add_library(sae_project_options INTERFACE)
target_compile_options(sae_project_options INTERFACE -Wall -Wextra -Wpedantic)
if(SAE_WERROR)
    target_compile_options(sae_project_options INTERFACE -Werror)
endif()
# GCC 12 reports a false "(may be) used uninitialized" inside its own avx512fintrin.h
# (`__m512 __Y = __Y;`) when AVX-512 kernels are inlined (CMAKE_CXX_FLAGS=-march=native
# on an AVX-512 machine, as tools/run-main builds): hundreds of warnings about GCC's
# header, none about this code. (The benchmarks add -march=native per target and say the
# same in benchmarks/CMakeLists.txt.)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_FLAGS MATCHES "-march=native")
    target_compile_options(sae_project_options INTERFACE -Wno-maybe-uninitialized -Wno-uninitialized)
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

# sae_light_under_sanitizers(TARGET): compile TARGET at -O0 in the sanitizer build.
# For targets that parse files, drive the command line or train tiny models, the
# instrumented -O1 build costs 2.5x the compile time of -O0 (95 s against 35 s for the
# CLI's train.cpp) and buys no test speed that matters; -O0 also keeps every check in
# place. Eigen-heavy numerical tests keep -O1, where they would otherwise run for minutes.
function(sae_light_under_sanitizers target)
    if(SAE_SANITIZE)
        target_compile_options(${target} PRIVATE -O0)
    endif()
endfunction()
