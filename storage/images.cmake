# storage/images.cmake — the image store (debootstrap/busybox builds, OCI/docker imports);
# included from storage/CMakeLists.txt.
add_library(warren_images STATIC ${CMAKE_CURRENT_LIST_DIR}/image_store.cpp ${CMAKE_CURRENT_LIST_DIR}/image_ref.cpp
            ${CMAKE_CURRENT_LIST_DIR}/registry.cpp)
find_package(CURL REQUIRED)  # registry pulls (storage/registry.cpp)
find_package(OpenSSL REQUIRED)
target_link_libraries(warren_images PUBLIC warren_core nlohmann_json::nlohmann_json PRIVATE CURL::libcurl OpenSSL::Crypto)
