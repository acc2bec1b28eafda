// ---- Templates shared by every generated circuit (joynet/zk/circuitgen/library.circom) ----

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

// A signed integer of `bits` bits (range-checked as in + 2^(bits-1) in [0, 2^bits)) as its
// bits / 4 nibbles of in + 2^(bits-1), least significant first: the weights commitment's stream.
template SignedNibbles(bits) {
    signal input in;
    signal output out[bits \ 4];

    component range = Num2Bits(bits);
    range.in <== in + (1 << (bits - 1));
    for (var n = 0; n < bits \ 4; n++) {
        var nibble = 0;
        for (var k = 0; k < 4; k++) {
            nibble += range.out[4 * n + k] * (1 << k);
        }
        out[n] <== nibble;
    }
}

// An input value in 0..2^bits - 1.
template InputBits(bits) {
    signal input in;
    component range = Num2Bits(bits);
    range.in <== in;
}

// An input value in 0..2^k: k + 1 bits, and the top one only with the others clear.
template InputUpToPowerOfTwo(k) {
    signal input in;
    component range = Num2Bits(k + 1);
    range.in <== in;
    var low = 0;
    for (var i = 0; i < k; i++) {
        low += range.out[i];
    }
    range.out[k] * low === 0;
}

// An input value in 0..maxValue (maxValue < 2^bits): both it and maxValue - it fit `bits` bits.
template InputUpTo(maxValue, bits) {
    signal input in;
    component low = Num2Bits(bits);
    low.in <== in;
    component high = Num2Bits(bits);
    high.in <== maxValue - in;
}

// floor(in / 2^shift) for in + 2^(shift + quotientBits - 1) in [0, 2^(shift + quotientBits)).
// The quotient and the remainder are both range-checked, so they are the unique floor division
// of `in` (nothing wraps around the field). `biasedQuotient` = quotient + 2^(quotientBits - 1).
template BiasedQuotient(shift, quotientBits) {
    signal input in;
    signal output biasedQuotient;
    signal output sign;  // 1 exactly when the quotient is >= 0

    var offset = 1 << (shift + quotientBits - 1);
    biasedQuotient <-- (in + offset) \ (1 << shift);
    component quotientRange = Num2Bits(quotientBits);
    quotientRange.in <== biasedQuotient;
    signal remainder;
    component remainderRange;
    if (shift > 0) {
        remainder <-- (in + offset) % (1 << shift);
        remainderRange = Num2Bits(shift);
        remainderRange.in <== remainder;
    } else {
        remainder <== 0;
    }
    in + offset === biasedQuotient * (1 << shift) + remainder;
    sign <== quotientRange.out[quotientBits - 1];
}

// max(floor(in / 2^shift), 0): the quotient's sign is the top bit of its biased form, so the
// ReLU costs one constraint more than the rescale (instead of a full-field comparison).
template RescaleReLU(shift, quotientBits) {
    signal input in;
    signal output out;

    component quotient = BiasedQuotient(shift, quotientBits);
    quotient.in <== in;
    out <== quotient.sign * (quotient.biasedQuotient - (1 << (quotientBits - 1)));
}

// floor(in / 2^shift), signed (a rescale without a ReLU, or an average pool's division).
template Rescale(shift, quotientBits) {
    signal input in;
    signal output out;

    component quotient = BiasedQuotient(shift, quotientBits);
    quotient.in <== in;
    out <== quotient.biasedQuotient - (1 << (quotientBits - 1));
}

// The maximum of n values whose pairwise differences are below 2^diffBits: out - in[i] >= 0 for
// every i (range-checked), and out equals one of them (the product of the differences is 0).
template MaxPool(n, diffBits) {
    signal input in[n];
    signal output out;

    var best = in[0];
    for (var i = 1; i < n; i++) {
        if (in[i] > best) {  // circom compares field elements as signed values
            best = in[i];
        }
    }
    out <-- best;
    component nonNegative[n];
    for (var i = 0; i < n; i++) {
        nonNegative[i] = Num2Bits(diffBits);
        nonNegative[i].in <== out - in[i];
    }
    signal product[n - 1];
    product[0] <== out - in[0];
    for (var i = 1; i < n - 1; i++) {
        product[i] <== product[i - 1] * (out - in[i]);
    }
    product[n - 2] * (out - in[n - 1]) === 0;
}

// The index of the maximum of n values whose pairwise differences are below 2^diffBits; ties go
// to the lowest index. `index` is chosen by the prover and then pinned down: one-hot selector,
// selected value >= every value, and > every value at a lower index.
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
