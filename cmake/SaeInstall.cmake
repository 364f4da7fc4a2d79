# Installation and package export: `find_package(sae CONFIG REQUIRED)` then link
# `sae::sae`. The build tree is exported too, so a sibling project can point
# sae_DIR at a build directory without installing.
include(CMakePackageConfigHelpers)

install(TARGETS sae EXPORT saeTargets)
install(DIRECTORY include/sae DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(SAE_CONFIG_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/cmake/sae)
configure_package_config_file(cmake/saeConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/saeConfig.cmake
    INSTALL_DESTINATION ${SAE_CONFIG_INSTALL_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/saeConfigVersion.cmake
    COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)

install(EXPORT saeTargets NAMESPACE sae:: DESTINATION ${SAE_CONFIG_INSTALL_DIR})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/saeConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/saeConfigVersion.cmake
    DESTINATION ${SAE_CONFIG_INSTALL_DIR})
export(EXPORT saeTargets NAMESPACE sae:: FILE ${CMAKE_CURRENT_BINARY_DIR}/saeTargets.cmake)

# The MPI component has its own export file, loaded by saeConfig.cmake only when the
# consumer's MPI is found, so find_package(sae) never requires MPI.
if(TARGET sae_mpi)
    install(TARGETS sae_mpi EXPORT saeMpiTargets)
    install(EXPORT saeMpiTargets NAMESPACE sae:: DESTINATION ${SAE_CONFIG_INSTALL_DIR})
    export(EXPORT saeMpiTargets NAMESPACE sae:: FILE ${CMAKE_CURRENT_BINARY_DIR}/saeMpiTargets.cmake)
endif()
