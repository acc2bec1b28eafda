pragma circom 2.1.0;

// Proof of one inference of the 64-16-10 digits MLP (joynet/zk/model.py computes the same thing
// bit for bit). The weights, biases, pixels and salt stay private; the proof shows that the
// network committed to by weightsCommitment, applied to the image committed to by
// inputCommitment, outputs what outputCommitment commits to, for the request and the node that
// binding = requestId * 2^160 + node names (requestId < 2^64, so binding < 2^224 < r).
// Commitment definitions: joynet/zk/commitments.py and the README ("Zero-knowledge proofs").

include "poseidon.circom";
include "bitify.circom";

// Packs bytes (each already constrained to 0..255) into field elements, 31 bytes per element,
// little-endian: 31 bytes stay below 2^248 < r, so packing is injective.
template PackBytes(n) {
    var nElements = (n + 30) \ 31;
    signal input in[n];
    signal output out[nElements];

    for (var e = 0; e < nElements; e++) {
        var packed = 0;
        var weight = 1;
        for (var i = 31 * e; i < n && i < 31 * (e + 1); i++) {
            packed += in[i] * weight;
            weight *= 256;
        }
        out[e] <== packed;
    }
}

// Packs nibbles (each already constrained to 0..15) into field elements, 63 nibbles per element,
// little-endian: 63 nibbles stay below 2^252 < r, so packing is injective.
template PackNibbles(n) {
    var nElements = (n + 62) \ 63;
    signal input in[n];
    signal output out[nElements];

    for (var e = 0; e < nElements; e++) {
        var packed = 0;
        var weight = 1;
        for (var i = 63 * e; i < n && i < 63 * (e + 1); i++) {
            packed += in[i] * weight;
            weight *= 16;
        }
        out[e] <== packed;
    }
}

// Hashes any number of elements with circomlib's widest Poseidon: the first hash takes up to 16
// elements, each further hash the previous digest and up to 15 more.
template PoseidonChain(n) {
    var first = n < 16 ? n : 16;
    var nHashes = 1 + (n - first + 14) \ 15;
    signal input in[n];
    signal output out;

    component hashes[nHashes];
    hashes[0] = Poseidon(first);
    for (var i = 0; i < first; i++) {
        hashes[0].inputs[i] <== in[i];
    }
    var start = first;
    for (var h = 1; h < nHashes; h++) {
        var size = n - start < 15 ? n - start : 15;
        hashes[h] = Poseidon(size + 1);
        hashes[h].inputs[0] <== hashes[h - 1].out;
        for (var i = 0; i < size; i++) {
            hashes[h].inputs[i + 1] <== in[start + i];
        }
        start += size;
    }
    out <== hashes[nHashes - 1].out;
}

// max(floor(in / 2^shift), 0) for |in| < 2^(shift + quotientBits - 1). The quotient and the
// remainder are both range-checked, so they are the unique floor division of `in` (nothing
// wraps around the field), and the quotient's sign is the top bit of its biased form: this costs
// shift + quotientBits + 1 constraints instead of a full-field comparison.
template RescaleReLU(shift, quotientBits) {
    signal input in;
    signal output out;

    var offset = 1 << (shift + quotientBits - 1);
    signal biasedQuotient;
    signal remainder;
    biasedQuotient <-- (in + offset) \ (1 << shift);
    remainder <-- (in + offset) % (1 << shift);

    component remainderRange = Num2Bits(shift);
    remainderRange.in <== remainder;
    component quotientRange = Num2Bits(quotientBits);
    quotientRange.in <== biasedQuotient;
    in + offset === biasedQuotient * (1 << shift) + remainder;

    // Top bit 1 <=> quotient = biasedQuotient - 2^(quotientBits-1) >= 0.
    out <== quotientRange.out[quotientBits - 1] * (biasedQuotient - (1 << (quotientBits - 1)));
}

// The index of the maximum of n signed values with |value| < 2^(diffBits-1); ties go to the
// lowest index. `index` is chosen by the prover and then pinned down: one-hot selector, selected
// value >= every value, and > every value at a lower index.
template ArgMax(n, diffBits) {
    signal input in[n];
    signal output index;

    var best = 0;
    var bestValue = in[0];
    for (var i = 1; i < n; i++) {
        if (in[i] > bestValue) {  // circom compares field elements as signed values
            best = i;
            bestValue = in[i];
        }
    }

    signal selected[n];
    signal picked[n];
    var count = 0;
    var position = 0;
    var maximum = 0;
    for (var i = 0; i < n; i++) {
        selected[i] <-- i == best ? 1 : 0;
        selected[i] * (selected[i] - 1) === 0;
        picked[i] <== selected[i] * in[i];
        count += selected[i];
        position += i * selected[i];
        maximum += picked[i];
    }
    count === 1;
    index <== position;

    component nonNegative[n];
    for (var j = 0; j < n; j++) {
        var selectedAfter = 0;  // 1 exactly when j < index
        for (var i = j + 1; i < n; i++) {
            selectedAfter += selected[i];
        }
        nonNegative[j] = Num2Bits(diffBits);
        nonNegative[j].in <== maximum - in[j] - selectedAfter;
    }
}

template DigitsMLP(nInputs, nHidden, nClasses, shift) {
    // Bounds (see joynet/zk/model.py): pixels 0..16, int4 weights, int16 biases give
    // |acc1| < 2^16, a 15-bit signed quotient (shift 2), and logit differences below 2^23.
    var weightBits = 4;
    var biasBits = 16;
    var quotientBits = 16 - shift + 1;
    var logitDiffBits = 23;

    // Public inputs, in this order: [weightsCommitment, inputCommitment, outputBinding].
    // outputBinding = class * 2^224 + requestId * 2^160 + node: the output and the binding to one
    // request and one node share a field element (one public input fewer: ~6,200 gas less per
    // verification). ProofOfInference computes it from the claimed class, the request id
    // (< 2^64) and msg.sender; it is below 10 * 2^224 < r.
    signal input weightsCommitment;
    signal input inputCommitment;
    signal input outputBinding;
    signal input requestNode;  // private: requestId * 2^160 + node, range-checked to 224 bits

    signal input w1[nHidden][nInputs];
    signal input b1[nHidden];
    signal input w2[nClasses][nHidden];
    signal input b2[nClasses];
    signal input pixels[nInputs];
    signal input salt;

    // ---- weights: int4 / int16 range checks, the nibble stream, its commitment ----
    // A weight w is the nibble w + 8 (its 4-bit range check); a bias b is the four nibbles of
    // b + 2^15 (its 16-bit range check), least significant first.
    var nibblesPerBias = biasBits \ 4;
    var nNibbles = (nHidden * nInputs + nClasses * nHidden) + nibblesPerBias * (nHidden + nClasses);
    signal nibbles[nNibbles];
    component w1Range[nHidden][nInputs];
    component b1Range[nHidden];
    component w2Range[nClasses][nHidden];
    component b2Range[nClasses];
    var at = 0;
    for (var j = 0; j < nHidden; j++) {
        for (var i = 0; i < nInputs; i++) {
            w1Range[j][i] = Num2Bits(weightBits);
            w1Range[j][i].in <== w1[j][i] + (1 << (weightBits - 1));
            nibbles[at] <== w1[j][i] + (1 << (weightBits - 1));
            at++;
        }
    }
    for (var j = 0; j < nHidden; j++) {
        b1Range[j] = Num2Bits(biasBits);
        b1Range[j].in <== b1[j] + (1 << (biasBits - 1));
        for (var n = 0; n < nibblesPerBias; n++) {
            var nibble = 0;
            for (var k = 0; k < 4; k++) {
                nibble += b1Range[j].out[4 * n + k] * (1 << k);
            }
            nibbles[at] <== nibble;
            at++;
        }
    }
    for (var k = 0; k < nClasses; k++) {
        for (var j = 0; j < nHidden; j++) {
            w2Range[k][j] = Num2Bits(weightBits);
            w2Range[k][j].in <== w2[k][j] + (1 << (weightBits - 1));
            nibbles[at] <== w2[k][j] + (1 << (weightBits - 1));
            at++;
        }
    }
    for (var k = 0; k < nClasses; k++) {
        b2Range[k] = Num2Bits(biasBits);
        b2Range[k].in <== b2[k] + (1 << (biasBits - 1));
        for (var n = 0; n < nibblesPerBias; n++) {
            var nibble = 0;
            for (var i = 0; i < 4; i++) {
                nibble += b2Range[k].out[4 * n + i] * (1 << i);
            }
            nibbles[at] <== nibble;
            at++;
        }
    }
    component weightElements = PackNibbles(nNibbles);
    weightElements.in <== nibbles;
    component weightsHash = PoseidonChain((nNibbles + 62) \ 63);
    weightsHash.in <== weightElements.out;
    weightsCommitment === weightsHash.out;

    // ---- input: pixels 0..16 (5 bits, and 16 only with the low bits clear), salted commitment ----
    component pixelRange[nInputs];
    for (var i = 0; i < nInputs; i++) {
        pixelRange[i] = Num2Bits(5);
        pixelRange[i].in <== pixels[i];
        pixelRange[i].out[4] * (pixelRange[i].out[0] + pixelRange[i].out[1] + pixelRange[i].out[2] + pixelRange[i].out[3]) === 0;
    }
    component pixelElements = PackBytes(nInputs);
    pixelElements.in <== pixels;
    var nPixelElements = (nInputs + 30) \ 31;
    component inputHash = Poseidon(nPixelElements + 1);
    for (var e = 0; e < nPixelElements; e++) {
        inputHash.inputs[e] <== pixelElements.out[e];
    }
    inputHash.inputs[nPixelElements] <== salt;
    inputCommitment === inputHash.out;

    // ---- the network ----
    signal products1[nHidden][nInputs];
    component hidden[nHidden];
    for (var j = 0; j < nHidden; j++) {
        var acc = b1[j];
        for (var i = 0; i < nInputs; i++) {
            products1[j][i] <== w1[j][i] * pixels[i];
            acc += products1[j][i];
        }
        hidden[j] = RescaleReLU(shift, quotientBits);
        hidden[j].in <== acc;
    }
    signal products2[nClasses][nHidden];
    signal logits[nClasses];
    for (var k = 0; k < nClasses; k++) {
        var acc = b2[k];
        for (var j = 0; j < nHidden; j++) {
            products2[k][j] <== w2[k][j] * hidden[j].out;
            acc += products2[k][j];
        }
        logits[k] <== acc;
    }
    component label = ArgMax(nClasses, logitDiffBits);
    label.in <== logits;

    // ---- output and binding: class * 2^224 + requestNode, with requestNode < 2^224 ----
    // The range check makes the split unique: without it a prover could move any multiple of
    // 2^224 between the class and requestNode and claim another class.
    component requestNodeRange = Num2Bits(224);
    requestNodeRange.in <== requestNode;
    outputBinding === label.index * (1 << 224) + requestNode;
}

component main {public [weightsCommitment, inputCommitment, outputBinding]} = DigitsMLP(64, 16, 10, 2);
