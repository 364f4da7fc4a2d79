// Smallest useful libsae consumer: include the headers through sae::sae, encode a
// batch with a TopK SAE, and catch a libsae exception. Exit code 0: it all worked.
#include <sae/core/activations/topk.hpp>
#include <sae/core/autoencoder.hpp>

#include <iostream>

static_assert(__cplusplus >= 201703L, "sae::sae must request C++17 for its consumers");

int main() {
    sae::Autoencoder<float, sae::TopK> model({/*d_in=*/8, /*d_sae=*/16}, {/*k=*/2}, /*seed=*/1);
    const sae::Matrix<float> batch = sae::Matrix<float>::Constant(3, 8, 0.5f);
    const sae::Matrix<float> code = model.encode(batch);
    if (code.rows() != 3 || code.cols() != 16 || ((code.array() != 0.0f).rowwise().count() > 2).any()) {
        std::cerr << "consumer: unexpected code shape or sparsity\n";
        return 1;
    }
    try {
        model.encode(sae::Matrix<float>::Ones(3, 7));
    } catch (const sae::shape_error& e) {
        std::cout << "consumer ok: code " << code.rows() << "x" << code.cols() << ", caught '" << e.what() << "'\n";
        return 0;
    }
    std::cerr << "consumer: a wrong input width was not rejected\n";
    return 1;
}
