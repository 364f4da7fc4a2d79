# cmake -P script used by the consumer tests' setup fixture: installs libsae from the
# build tree BUILD_DIR into a fresh PREFIX and checks that the package files are there.
#   cmake -DBUILD_DIR=<build> -DPREFIX=<dir> [-DCONFIG=<cfg>] -P SaeInstallForTest.cmake
foreach(var IN ITEMS BUILD_DIR PREFIX)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "SaeInstallForTest.cmake: -D${var}=... is required")
    endif()
endforeach()

# Start empty so that a header deleted from the source tree cannot linger in the prefix.
file(REMOVE_RECURSE "${PREFIX}")

set(config_args "")
if(CONFIG)
    set(config_args --config "${CONFIG}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}" ${config_args}
                RESULT_VARIABLE result)
if(NOT result EQUAL 0)
    message(FATAL_ERROR "cmake --install ${BUILD_DIR} --prefix ${PREFIX} failed: ${result}")
endif()

foreach(file IN ITEMS include/sae/core/types.hpp include/sae/core/error.hpp
                      share/cmake/sae/saeConfig.cmake share/cmake/sae/saeConfigVersion.cmake
                      share/cmake/sae/saeTargets.cmake)
    if(NOT EXISTS "${PREFIX}/${file}")
        message(FATAL_ERROR "the install into ${PREFIX} lacks ${file}")
    endif()
endforeach()
message(STATUS "libsae installed into ${PREFIX}")
