# The README's first ```cpp block is a test: it is extracted at configure time into
# ${CMAKE_CURRENT_BINARY_DIR}/readme_example.cpp, built as `readme_example` against
# sae::sae with libsae's warning flags, and run by CTest as `readme_example`. Editing
# README.md re-runs the configure step (CMAKE_CONFIGURE_DEPENDS), so the example in
# the documentation cannot silently stop compiling.

# sae_add_readme_example(README_PATH)
function(sae_add_readme_example readme)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${readme}")
    set(output "${CMAKE_CURRENT_BINARY_DIR}/readme_example.cpp")

    set(code "")
    if(EXISTS "${readme}")
        file(READ "${readme}" text)
        string(REPLACE "\r\n" "\n" text "${text}")
        # Prefix a newline so a fence on the first line is found like any other.
        set(text "\n${text}")
        string(FIND "${text}" "\n```cpp\n" open)
        if(open GREATER_EQUAL 0)
            math(EXPR body_start "${open} + 8")
            string(SUBSTRING "${text}" ${body_start} -1 rest)
            string(FIND "${rest}" "\n```" close)
            if(close GREATER_EQUAL 0)
                math(EXPR close "${close} + 1")
                string(SUBSTRING "${rest}" 0 ${close} code)
                # Line of the block's first code line in README.md, for #line: the
                # prefix holds the added newline, so its newline count is that number.
                string(SUBSTRING "${text}" 0 ${body_start} before)
                string(REGEX MATCHALL "\n" newlines "${before}")
                list(LENGTH newlines first_line)
            endif()
        endif()
    endif()

    if(code STREQUAL "")
        message(WARNING "${readme} has no complete ```cpp block; the readme_example test will fail")
        add_test(NAME readme_example COMMAND "${CMAKE_COMMAND}" -E echo
                 "README.md has no fenced ```cpp block to compile")
        set_tests_properties(readme_example PROPERTIES WILL_FAIL TRUE)
        # WILL_FAIL inverts the result of `echo` (which succeeds), so the test fails.
        return()
    endif()

    # Compiler messages point at README.md lines, not at the generated file.
    set(content "#line ${first_line} \"${readme}\"\n${code}")
    # Rewrite only on change, so re-configuring does not force a rebuild.
    set(old "")
    if(EXISTS "${output}")
        file(READ "${output}" old)
    endif()
    if(NOT old STREQUAL content)
        file(WRITE "${output}" "${content}")
    endif()

    add_executable(readme_example "${output}")
    target_link_libraries(readme_example PRIVATE sae::sae sae_project_options)
    add_test(NAME readme_example COMMAND readme_example)
    set_tests_properties(readme_example PROPERTIES LABELS readme TIMEOUT 120)
endfunction()
