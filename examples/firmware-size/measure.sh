#!/usr/bin/env bash
# Prints the cost of each allocator on firmware, per target: code size, the allocator's own RAM, and (on
# RISC-V, counted by QEMU) instructions per allocation/free pair. Run from anywhere:
#
#     bash examples/firmware-size/measure.sh [TARGET...]
#
# (all three targets below unless some are named).
# Needs the targets thumbv6m-none-eabi, thumbv7m-none-eabi and riscv32imc-unknown-none-elf, rustup's
# llvm-tools (llvm-size, llvm-nm) and qemu-system-riscv32; it installs the first two itself.
set -euo pipefail
cd "$(dirname "$0")"
rustup target add thumbv6m-none-eabi thumbv7m-none-eabi riscv32imc-unknown-none-elf >/dev/null 2>&1 || true
rustup component add llvm-tools >/dev/null 2>&1 || true
bin="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
allocators=(none poolgc llff tlsf talc)
declare -A name=([poolgc]="poolgc (PoolAlloc::empty)" [llff]="embedded-alloc LlffHeap"
    [tlsf]="embedded-alloc TlsfHeap" [talc]="talc (Talck, ErrOnOom)")
out=target/measure
mkdir -p "$out"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(thumbv6m-none-eabi thumbv7m-none-eabi riscv32imc-unknown-none-elf)
for t in "${targets[@]}"; do
    for a in "${allocators[@]}"; do
        cargo build -q --release --features "$a" --target "$t"
        cp "target/$t/release/poolgc-firmware-size" "$out/$t-$a"
    done
    base=$("$bin/llvm-size" -A "$out/$t-none" | awk '$1 == ".text" { print $2 }')
    printf '\n%s (.text of the baseline image, an allocator that refuses everything: %s B)\n\n' "$t" "$base"
    if [[ $t == riscv* ]]; then
        echo "| allocator | code (.text over baseline) | allocator state (RAM) | instructions per alloc+free: 32 B alone | 32 B, another live | 16-block churn | 32 B blocks from 8 KiB |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
    else
        echo "| allocator | code (.text over baseline) | allocator state (RAM) |"
        echo "|---|---:|---:|"
    fi
    for a in "${allocators[@]:1}"; do
        elf="$out/$t-$a"
        text=$("$bin/llvm-size" -A "$elf" | awk '$1 == ".text" { print $2 }')
        # The allocator static (named ALLOC in every image): its own state, beside the heap; in .data (d:
        # its initial image is in flash too) or .bss (b: zeroed at start).
        read -r size kind < <("$bin/llvm-nm" -S -C "$elf" | awk '$4 ~ /::chosen::ALLOC(::h[0-9a-f]+)?$/ { print $2, $3 }')
        ram="$(printf '%d' "0x$size") (.$([[ $kind == [dD] ]] && echo data || echo bss))"
        if [[ $t == riscv* ]]; then
            counts=$(timeout 60 qemu-system-riscv32 -machine virt -bios none -nographic -icount shift=0 \
                -kernel "$elf" | tr -d '\r')
            pair=$(sed -n 's/.*pair=\([0-9]*\).*/\1/p' <<<"$counts")
            warm=$(sed -n 's/.*warm=\([0-9]*\).*/\1/p' <<<"$counts")
            churn=$(sed -n 's/.*churn=\([0-9]*\).*/\1/p' <<<"$counts")
            fill=$(sed -n 's/.*fill32=\([0-9]*\).*/\1/p' <<<"$counts")
            echo "| ${name[$a]} | $((text - base)) | $ram | $pair | $warm | $churn | $fill |"
        else
            echo "| ${name[$a]} | $((text - base)) | $ram |"
        fi
    done
done
