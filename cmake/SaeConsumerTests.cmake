# Consumer tests (after nlohmann/json's tests/cmake_*): build the one-file project in
# tests/cmake_consumer against this libsae the four ways a downstream project can use
# it, each as a CTest test labelled "consumer":
#   consumer_find_package      install into a temp prefix (fixture), then find_package
#   consumer_build_tree        find_package against this build tree's export
#   consumer_add_subdirectory  add_subdirectory(<libsae source>)
#   consumer_fetchcontent      FetchContent_Declare(sae SOURCE_DIR <libsae source>)
# The consumer project itself asserts that libsae's tests/examples are not built in
# the embedded modes. Included from tests/CMakeLists.txt, so only when tests are on.

set(SAE_CONSUMER_SOURCE_DIR "${PROJECT_SOURCE_DIR}/tests/cmake_consumer")
set(SAE_CONSUMER_WORK_DIR "${PROJECT_BINARY_DIR}/consumer-tests")
set(SAE_CONSUMER_PREFIX "${SAE_CONSUMER_WORK_DIR}/prefix")

# Options common to every consumer build: same generator and compiler as this build,
# unoptimised (what is tested is that the headers are found and compile, and -O0 makes
# each of the four builds several times cheaper than -O2), and no lookups in the
# user/system package registries.
set(sae_consumer_common_options
    -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DCMAKE_BUILD_TYPE=Debug
    -DCMAKE_CXX_FLAGS_DEBUG=-O0
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)

# sae_add_consumer_test(MODE [extra -D options...])
function(sae_add_consumer_test mode)
    set(build_dir "${SAE_CONSUMER_WORK_DIR}/${mode}")
    set(makeprogram_args "")
    if(CMAKE_MAKE_PROGRAM)
        set(makeprogram_args --build-makeprogram "${CMAKE_MAKE_PROGRAM}")
    endif()
    add_test(NAME consumer_${mode}
             COMMAND "${CMAKE_CTEST_COMMAND}"
                     --build-and-test "${SAE_CONSUMER_SOURCE_DIR}" "${build_dir}"
                     --build-generator "${CMAKE_GENERATOR}"
                     ${makeprogram_args}
                     --build-options ${sae_consumer_common_options} -DSAE_CONSUMER_MODE=${mode} ${ARGN}
                     --test-command "${CMAKE_CTEST_COMMAND}" --output-on-failure)
    # COST: each is a CMake configure and build, the longest tests of build/ (about 25 s
    # of CPU); a fresh tree has no timings yet, and ctest -j starts the costliest first.
    set_tests_properties(consumer_${mode} PROPERTIES LABELS consumer TIMEOUT 300 COST 40)
endfunction()

add_test(NAME consumer_install
         COMMAND "${CMAKE_COMMAND}" -DBUILD_DIR=${PROJECT_BINARY_DIR} -DPREFIX=${SAE_CONSUMER_PREFIX}
                 -DCONFIG=$<CONFIG> -P "${PROJECT_SOURCE_DIR}/cmake/SaeInstallForTest.cmake")
set_tests_properties(consumer_install PROPERTIES LABELS consumer FIXTURES_SETUP sae_installed)

sae_add_consumer_test(find_package
    -DCMAKE_PREFIX_PATH=${SAE_CONSUMER_PREFIX}
    -DSAE_EXPECTED_CONFIG_DIR=${SAE_CONSUMER_PREFIX}/${CMAKE_INSTALL_DATADIR}/cmake/sae)
set_tests_properties(consumer_find_package PROPERTIES FIXTURES_REQUIRED sae_installed)

sae_add_consumer_test(build_tree
    -Dsae_DIR=${PROJECT_BINARY_DIR}
    -DSAE_EXPECTED_CONFIG_DIR=${PROJECT_BINARY_DIR})

sae_add_consumer_test(add_subdirectory -DSAE_SOURCE_DIR=${PROJECT_SOURCE_DIR})
sae_add_consumer_test(fetchcontent -DSAE_SOURCE_DIR=${PROJECT_SOURCE_DIR})
