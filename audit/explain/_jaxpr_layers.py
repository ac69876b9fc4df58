"""Find the layers of any JAX model by walking its jaxpr, and run it with replaced backward rules.

`trace(apply, params, input_shape)` flattens `jax.make_jaxpr` of the model into primitive
equations (calls such as pjit, custom_jvp / custom_vjp are inlined; for a custom_vjp the primal
function is used), folds everything that does not depend on the input into constants (the
parameters, batch-norm statistics), and groups the rest into layers:

- a linear layer: `dot_general` or `conv_general_dilated` of the activation with a constant, or
  a weightless linear op (`reduce_window_sum`, `reduce_sum`: average and global average
  pooling), followed by every elementwise affine op with a constant operand (bias add, batch-norm scale and shift): y = s * op(a, W) + t,
  so batch norm is merged into the layer before it (as zennit's canonizers do);
- an elementwise affine layer: such a chain with no linear op before it (e.g. an input norm);
- nonlinear elementwise ops with a constant operand or none (ReLU as max(x, 0), tanh, ...);
- max pooling (`reduce_window_max`);
- structural ops (reshape, transpose, broadcast, slicing, type conversion), which move values.

Anything else that depends on the input (a product of two activations, attention, a residual
sum) is refused with one clear error naming the primitive. This is self-contained in explain/;
a generic jaxpr interpreter for custom models lives with the models (issue #14).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np

from audit.errors import AuditInputError

CALLS = {"pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr", "remat": "jaxpr",
         "checkpoint": "jaxpr", "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr",
         "custom_vjp_call_jaxpr": "fun_jaxpr", "jit": "jaxpr"}
LINEAR = ("dot_general", "conv_general_dilated")
WEIGHTLESS = ("reduce_window_sum", "reduce_sum")  # average and global average pooling
AFFINE = ("add", "sub", "mul", "div")
NONLINEAR = ("max", "min", "tanh", "logistic", "exp", "log", "abs", "integer_pow", "sqrt", "rsqrt",
             "erf", "log1p", "expm1", "pow")
MAXPOOL = ("reduce_window_max",)
STRUCTURAL = ("reshape", "transpose", "broadcast_in_dim", "squeeze", "expand_dims", "convert_element_type",
              "copy", "copy_p", "slice", "rev", "pad", "reduce_precision", "stop_gradient", "concatenate", "stack")


@dataclasses.dataclass
class Node:
    prim: Any
    params: dict
    ins: list[int]
    outs: list[int]


@dataclasses.dataclass(eq=False)
class Layer:
    """Nodes start..end (in order): op node, then the affine chain; `act` feeds it, `out` leaves it."""

    kind: str  # "dense", "conv", "pool" (weightless linear) or "affine"
    op: int | None  # index of the linear node (None for an affine-only layer)
    chain: list[int]
    act: int
    out: int
    weight: int | None  # key of the constant weight operand


@dataclasses.dataclass(eq=False)
class Program:
    nodes: list[Node]
    consts: dict[int, Any]
    input: int
    output: int
    layers: dict[int, Layer]  # first node index -> layer
    skip: set[int]  # nodes evaluated as part of a layer or folded into constants

    def kinds(self) -> list[str]:
        return [l.kind for l in self.layers.values()]


class _Flattener:
    def __init__(self):
        self.nodes: list[Node] = []
        self.consts: dict[int, Any] = {}
        self.n = 0

    def key(self) -> int:
        self.n += 1
        return self.n

    def const(self, value) -> int:
        k = self.key()
        self.consts[k] = value
        return k

    def run(self, jaxpr, consts, in_keys: list[int]) -> list[int]:
        env: dict[Any, int] = {}
        for v, c in zip(jaxpr.constvars, consts):
            env[v] = self.const(c)
        for v, k in zip(jaxpr.invars, in_keys):
            env[v] = k

        def read(atom) -> int:
            if isinstance(atom, jex.Literal):
                return self.const(atom.val)
            return env[atom]

        for eqn in jaxpr.eqns:
            ins = [read(a) for a in eqn.invars]
            name = eqn.primitive.name
            if name in CALLS and CALLS[name] in eqn.params:
                inner = eqn.params[CALLS[name]]
                inner_jaxpr = getattr(inner, "jaxpr", inner)
                inner_consts = getattr(inner, "consts", ())
                n_in = len(inner_jaxpr.invars)
                outs = self.run(inner_jaxpr, inner_consts, ins[len(ins) - n_in:] if name.startswith("custom_vjp")
                                else ins[:n_in])
            else:
                outs = [self.key() for _ in eqn.outvars]
                self.nodes.append(Node(eqn.primitive, dict(eqn.params), ins, outs))
            for v, k in zip(eqn.outvars, outs):
                env[v] = k
        return [read(a) for a in jaxpr.outvars]


def _bind(node: Node, values: list) -> list:
    out = node.prim.bind(*values, **node.params)
    return list(out) if node.prim.multiple_results else [out]


def trace(apply: Callable, params, input_shape: tuple[int, ...], *, batch: int = 1) -> Program:
    """The model's program for inputs of shape (batch, *input_shape)."""
    closed = jax.make_jaxpr(lambda x: apply(params, x))(jnp.zeros((batch, *input_shape), jnp.float32))
    flat = _Flattener()
    x_key = flat.key()
    (out_key,) = flat.run(closed.jaxpr, closed.consts, [x_key])
    nodes, consts = flat.nodes, flat.consts
    skip: set[int] = set()
    for i, node in enumerate(nodes):  # constant folding: parameters and what is computed from them
        if all(k in consts for k in node.ins):
            for k, v in zip(node.outs, _bind(node, [consts[k] for k in node.ins])):
                consts[k] = v
            skip.add(i)
    consumers: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        if i not in skip:
            for k in node.ins:
                consumers.setdefault(k, []).append(i)
    shapes = {k: np.shape(v) for k, v in consts.items()}
    values = dict(consts)
    values[x_key] = jnp.zeros((batch, *input_shape), jnp.float32)
    for i, node in enumerate(nodes):  # one concrete pass for every value's shape
        if i not in skip:
            for k, v in zip(node.outs, _bind(node, [values[k] for k in node.ins])):
                values[k], shapes[k] = v, np.shape(v)
    layers: dict[int, Layer] = {}
    in_layer: set[int] = set()

    def chain_from(key: int, shape) -> list[int]:
        chain = []
        while len(consumers.get(key, ())) == 1:
            j = consumers[key][0]
            nxt = nodes[j]
            if nxt.prim.name not in AFFINE or j in in_layer:
                break
            other = [k for k in nxt.ins if k != key]
            if len(other) != 1 or other[0] not in consts or nxt.ins.count(key) != 1:
                break
            if nxt.prim.name == "div" and nxt.ins[1] == key:  # c / x is not affine in x
                break
            if np.shape(consts[other[0]]) and jnp.broadcast_shapes(np.shape(consts[other[0]]), shape) != tuple(shape):
                break
            chain.append(j)
            key = nxt.outs[0]
        return chain

    for i, node in enumerate(nodes):
        if i in skip or i in in_layer:
            continue
        name = node.prim.name
        live = [k for k in node.ins if k not in consts]
        if name in LINEAR or name in WEIGHTLESS:
            if len(live) != 1:
                raise AuditInputError(f"LRP/DeepLIFT: `{name}` multiplies two inputs-dependent values (e.g. "
                                      "attention); only dense, conv, pooling, batch-norm and elementwise "
                                      "activation layers are supported.")
            weight = next((k for k in node.ins if k in consts), None) if name in LINEAR else None
            kind = {"dot_general": "dense", "conv_general_dilated": "conv"}.get(name, "pool")
            chain = chain_from(node.outs[0], shapes[node.outs[0]])
            out = nodes[chain[-1]].outs[0] if chain else node.outs[0]
            layers[i] = Layer(kind, i, chain, live[0], out, weight)
            in_layer.update([i, *chain])
        elif name in AFFINE and len(live) == 1:
            if name == "div" and node.ins[1] == live[0]:
                continue  # c / x: treated below as nonlinear
            chain = [i] + chain_from(node.outs[0], shapes[node.outs[0]])
            layers[i] = Layer("affine", None, chain, live[0], nodes[chain[-1]].outs[0], None)
            in_layer.update(chain)
    for i, node in enumerate(nodes):
        if i in skip or i in in_layer:
            continue
        name = node.prim.name
        live = [k for k in node.ins if k not in consts]
        ok = (name in STRUCTURAL or name in MAXPOOL or (name in NONLINEAR and len(live) == 1)
              or (name == "div" and len(live) == 1))
        if not ok:
            raise AuditInputError(f"LRP/DeepLIFT: the model uses `{name}` on "
                                  f"{'two input-dependent values' if len(live) > 1 else 'its activations'}, "
                                  "which has no relevance rule here; supported: dense, conv, pooling, "
                                  "batch-norm and elementwise (ReLU-family, tanh, sigmoid) layers.")
    return Program(nodes, consts, x_key, out_key, layers, skip | in_layer - set(layers))


def _shape_of(node: Node, nodes, consts, producer) -> tuple[int, ...]:
    """Output shape of a node, from its abstract evaluation."""
    avals = [jax.core.ShapedArray(np.shape(consts[k]), jnp.result_type(consts[k])) if k in consts
             else None for k in node.ins]
    if any(a is None for a in avals):
        return tuple(node.params.get("_shape", ())) or _eval_shape(node, nodes, consts, producer)
    return tuple(np.shape(_bind(node, [consts[k] for k in node.ins])[0]))


def _eval_shape(node: Node, nodes, consts, producer) -> tuple[int, ...]:
    return tuple(node.params["_out_shape"])


def run(prog: Program, x, *, layer: Callable | None = None, nonlinear: Callable | None = None,
        maxpool: Callable | None = None, record: dict | None = None):
    """Evaluate the program on x. `layer(L, a)` replaces each layer's evaluation,
    `nonlinear(node_index, f, z)` each nonlinear elementwise op (f: z -> output), `maxpool(i, f, z)`
    each max pooling; None keeps the plain evaluation. `record` collects every value by key."""
    env = dict(prog.consts)
    env[prog.input] = x
    for i, node in enumerate(prog.nodes):
        if i in prog.skip:
            continue
        if i in prog.layers:
            L = prog.layers[i]
            env[L.out] = apply_layer(prog, L, env[L.act]) if layer is None else layer(L, env[L.act])
            if record is not None:
                record[L.out] = env[L.out]
            continue
        vals = [env[k] for k in node.ins]
        name = node.prim.name
        live = [j for j, k in enumerate(node.ins) if k not in prog.consts]
        if (name in NONLINEAR or name == "div") and nonlinear is not None and len(live) == 1:
            j = live[0]
            f = _unary(node, vals, j)
            outs = [nonlinear(i, f, vals[j])]
        elif name in MAXPOOL and maxpool is not None:
            outs = [maxpool(i, _unary(node, vals, 0), vals[0])]
        else:
            outs = _bind(node, vals)
        for k, v in zip(node.outs, outs):
            env[k] = v
            if record is not None:
                record[k] = v
    return env[prog.output]


def _unary(node: Node, vals: list, j: int) -> Callable:
    def f(z):
        args = list(vals)
        args[j] = z
        return _bind(node, args)[0]
    return f


def apply_layer(prog: Program, L: Layer, a, *, weight=None, skip_chain: bool = False, zero_consts: bool = False):
    """op(a, weight or the layer's own) followed by the affine chain (unless skip_chain).
    zero_consts replaces the chain's additive constants by zero (to read off the scale s)."""
    v = a
    if L.op is not None:
        node = prog.nodes[L.op]
        args = [v if k == L.act else (weight if (k == L.weight and weight is not None) else prog.consts[k])
                for k in node.ins]
        v = _bind(node, args)[0]
    if skip_chain:
        return v
    for j in L.chain:
        node = prog.nodes[j]
        args = []
        for k in node.ins:
            if k in prog.consts:
                c = prog.consts[k]
                args.append(jnp.zeros_like(c) if zero_consts and node.prim.name in ("add", "sub") else c)
            else:
                args.append(v)
        v = _bind(node, args)[0]
    return v
