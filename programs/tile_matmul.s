# One cube tile: out[16,128] (fp32) = q[16,128] @ k[128,128], bf16 inputs, fp32 accumulation.
# Each hand-off between pipes is a set_flag on the producer and a wait_flag on the consumer.
.program tile_matmul
.tensor q   bf16[16,128]  input
.tensor k   bf16[128,128] input
.tensor out fp32[16,128]  output

.kernel tile_matmul
    load     L1[0x0000] bf16[16,128] <- GM:q[0:16, 0:128] bf16
    load     L1[0x1000] bf16[128,128] <- GM:k[0:128, 0:128] bf16
    set_flag MTE2 MTE1 0          # both tiles are in L1
    wait_flag MTE2 MTE1 0
    move     L0A[0x0000] bf16[16,128] <- L1[0x0000] bf16[16,128]
    move     L0B[0x0000] bf16[128,128] <- L1[0x1000] bf16[128,128]
    set_flag MTE1 M 0             # operands are in L0A / L0B
    wait_flag MTE1 M 0
    mmad     L0C[0x0000] fp32[16,128] <- L0A[0x0000] bf16[16,128], L0B[0x0000] bf16[128,128]  init
    set_flag M FIX 0              # the product is in L0C
    wait_flag M FIX 0
    fixpipe  GM:out[0:16, 0:128] fp32 <- L0C[0x0000] fp32[16,128]
