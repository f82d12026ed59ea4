"""The memory plan: chunks over examples, outputs and layers that keep one NTK computation within a byte budget.

The plan is made from the probe pass's sizes (:mod:`regimescope.ntk.planning.profile`) before any expensive work, and
:func:`regimescope.ntk.plan_ntk` returns it to the user. Budget ``B`` is split as follows:

* the result (``n1 n2`` or ``n1 n2 k^2`` scalars, per block with ``per_layer``) is reserved first;
* collection passes (layer rules): a forward pass over ``c`` examples keeps about ``c A`` bytes of graph
  (``A`` measured per example) and a batched backward pass over ``q`` outputs ``c q A`` more: ``c (1 + q) A``
  is kept under a quarter of the rest, and under :data:`COLLECT_TARGET`;
* the layer data of all examples (input tokens and output gradients, or per-sample gradients for norm layers)
  is kept under half of the rest; when it does not fit, blocks are split into layer groups (each with its own
  collection passes) and, if one group alone does not fit, examples into blocks collected pair by pair;
* each block's kernel is computed in chunks of examples and outputs whose working memory
  (:func:`regimescope.ntk.planning.costs.form_bytes`) fits what the stored data leaves;
* generic blocks are computed in groups from ``vmap(jacrev)`` rows in chunks that fit the rest.

``peak_bytes`` is the largest sum of what is alive at once according to these formulas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from regimescope.ntk.implementation import Implementation
from regimescope.ntk.model.blocks import ParamBlock
from regimescope.ntk.planning.costs import Form, Geometry, form_bytes, form_flops
from regimescope.ntk.planning.profile import SetProfile

COLLECT_TARGET = 64 * 2**20
"""Working bytes a collection pass aims at. Passes over more examples at once are not faster on a CPU (the
activations fall out of cache), so examples are chunked to about this size even when the budget allows more; all
outputs of one example are always batched together unless the budget forbids it."""


@dataclass(frozen=True)
class BlockPlan:
    """How one block's kernel is computed.

    Attributes:
        name: Block (layer) name.
        rule: The layer rules of its uses (``"linear"``, ``"conv"``, ``"embedding"``, ``"norm"``) or ``"generic"``.
        form: How its kernel is computed (a :class:`~regimescope.ntk.planning.costs.Form`, a ``str`` enum).
        parameters: ``P``.
        sample_chunk: Examples per chunk of the kernel computation.
        output_chunk: Outputs per chunk.
        flops: Estimated multiply-adds of the kernel computation (layer forms; 0 for generic rows).
        working_bytes: Estimated working memory.
    """

    name: str
    rule: str
    form: Form
    parameters: int
    sample_chunk: int
    output_chunk: int
    flops: int
    working_bytes: int


@dataclass(frozen=True)
class NtkPlan:
    """What an :func:`~regimescope.empirical_ntk` call will do, and the memory it will use.

    Attributes:
        budget_bytes: The byte budget planned for.
        peak_bytes: Estimated peak of the engine's memory (result included, model and inputs excluded).
        result_bytes: Bytes of the returned kernel(s).
        stored_bytes: Bytes of layer data alive at once.
        forward_passes: Forward passes of the model (collection passes and generic rows calls).
        backward_passes: Backward passes (a batched backward over several outputs counts once).
        collect_sample_chunk: Examples per collection forward pass.
        collect_output_chunk: Outputs per batched backward pass.
        sample_blocks: Examples per collection block in each set (the whole set when it fits).
        per_sample_layers: Layers whose collection passes keep per-sample gradients instead of factors.
        layer_groups: Block names collected together, group by group.
        generic_groups: Generic blocks whose rows are computed together.
        generic_sample_chunk: Examples per generic rows call.
        generic_output_chunk: Outputs per generic rows call.
        blocks: Per-block plans, in block order.
    """

    budget_bytes: int
    peak_bytes: int
    result_bytes: int
    stored_bytes: int
    forward_passes: int
    backward_passes: int
    collect_sample_chunk: int
    collect_output_chunk: int
    sample_blocks: tuple[int, int]
    per_sample_layers: tuple[str, ...]
    layer_groups: tuple[tuple[str, ...], ...]
    generic_groups: tuple[tuple[str, ...], ...]
    generic_sample_chunk: int
    generic_output_chunk: int
    blocks: tuple[BlockPlan, ...]

    @property
    def fits(self) -> bool:
        """Whether the estimated peak is within the budget."""
        return self.peak_bytes <= self.budget_bytes

    def summary(self) -> str:
        """A human-readable table of the plan."""
        lines = [
            f"NTK plan: peak {self.peak_bytes / 2**20:.1f} MiB of {self.budget_bytes / 2**20:.1f} MiB budget "
            f"(result {self.result_bytes / 2**20:.1f} MiB, layer data {self.stored_bytes / 2**20:.1f} MiB); "
            f"{self.forward_passes} forward / {self.backward_passes} backward passes; collection chunks "
            f"{self.collect_sample_chunk} examples x {self.collect_output_chunk} outputs; "
            f"{len(self.layer_groups)} layer group(s)",
            f"{'block':<32} {'rule':<16} {'form':<11} {'params':>11} {'chunk':>9} {'GFLOP':>9} {'MiB':>8}",
        ]
        for b in self.blocks:
            lines.append(
                f"{b.name[:32]:<32} {b.rule[:16]:<16} {b.form.value:<11} {b.parameters:>11} "
                f"{f'{b.sample_chunk}x{b.output_chunk}':>9} {b.flops / 1e9:>9.3f} {b.working_bytes / 2**20:>8.1f}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class PlanRequest:
    """Everything the planner reads.

    Attributes:
        blocks: Selected blocks, in order.
        covered: Names of blocks the layer rules compute (checked by the probe pass).
        profiles: Profiles of set 1 and set 2 (the same object for a kernel of ``x1`` with itself).
        params: Parameter sizes by qualified name.
        full: Full kernel.
        per_layer: Per-layer result.
        implementation: Requested implementation (already resolved for the mode).
        sketch: Sketch dimension ``m`` or ``None``.
        itemsize: Bytes per scalar.
        budget: Byte budget.
    """

    blocks: list[ParamBlock]
    covered: set[str]
    profiles: tuple[SetProfile, SetProfile]
    params: dict[str, int]
    full: bool
    per_layer: bool
    implementation: Implementation
    sketch: int | None
    itemsize: int
    budget: int

    @property
    def symmetric(self) -> bool:
        """Kernel of one set with itself."""
        return self.profiles[0] is self.profiles[1]

    @property
    def k(self) -> int:
        """Outputs."""
        return self.profiles[0].k

    @property
    def n(self) -> tuple[int, int]:
        """Examples per set."""
        return self.profiles[0].n, self.profiles[1].n


def _largest(limit: int, fits: Callable[[int], bool]) -> int:
    """Largest ``x`` in ``[1, limit]`` with ``fits(x)`` (``fits`` monotone), or 1."""
    lo, hi = 1, limit
    if fits(hi):
        return hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _chunks(n: int, k: int, cost: Callable[[int, int], int], room: int) -> tuple[int, int]:
    """Examples and outputs per chunk: all outputs and as many examples as fit, else one example and fewer outputs.

    When not even one example and one output fit, splitting outputs would only multiply passes without meeting
    the budget: one example with all outputs is used (and the plan reports that it does not fit).
    """
    if cost(1, k) <= room:
        return _largest(n, lambda c: cost(c, k) <= room), k
    if cost(1, 1) > room:
        return 1, k
    return 1, _largest(k, lambda q: cost(1, q) <= room)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def block_sizes(req: PlanRequest, block: ParamBlock) -> int:
    """``P`` of a block."""
    return sum(req.params[name] for name in block.param_names)


def _geometry(req: PlanRequest, block: ParamBlock, owner_rules: dict[str, object]) -> Geometry:
    p1, p2 = req.profiles
    owner = block.use_modules[0]
    first = p1.layers.get(owner)
    second = p2.layers.get(owner)
    formation = []
    for profile in (p1, p2):
        total = 0
        for name, rule in block.rules:
            shape = profile.layers[name]
            total += rule.per_sample_flops(owner_rules[name], shape.tokens, shape.record_width, shape.grad_width)
        formation.append(total)
    return Geometry(
        n=req.n, k=req.k, full=req.full, symmetric=req.symmetric, params=block_sizes(req, block),
        tokens=(first.tokens, second.tokens) if first and second else (1, 1),
        record_width=first.record_width if first and "weight" in block.local_names else 0,
        grad_width=first.grad_width if first else 0,
        formation=(formation[0], formation[1]), itemsize=req.itemsize,
    )


def _forms(req: PlanRequest, block: ParamBlock) -> list[Form]:
    """The forms the implementation allows for a covered block, in preference order."""
    gram = block.exclusive and dict(block.rules)[block.use_modules[0]].gram
    largest = max(req.params[name] for name in block.param_names)
    per_sample = Form.SKETCH if req.sketch is not None and largest > req.sketch else Form.PER_SAMPLE
    if req.implementation is Implementation.FACTORED:
        return [Form.GRAM] if gram else [per_sample]
    if req.implementation is Implementation.LAYER_PER_SAMPLE:
        return [per_sample]
    options = ([Form.GRAM] if gram else []) + [Form.PER_SAMPLE]
    return options + ([Form.SKETCH] if per_sample is Form.SKETCH else [])


def _choose(req: PlanRequest, block: ParamBlock, geometry: Geometry, options: list[Form], limit: int,
            room: int) -> tuple[int, Form, int, int, int]:
    """The cheapest form of ``options`` whose smallest chunks fit ``room`` (else the cheapest), with its chunks.

    Returns:
        ``(flops, form, examples per chunk, outputs per chunk, working bytes)``.
    """
    best = None
    for form in options:
        cost = lambda c, q, form=form: form_bytes(form, geometry, c, q, req.sketch)  # noqa: E731
        c, q = _chunks(limit, req.k, cost, room)
        candidate = (form_flops(form, geometry, req.sketch), form, c, q, cost(c, q))
        if best is None or (candidate[4] <= room, -candidate[0]) > (best[4] <= room, -best[0]):
            best = candidate
    return best


def _per_sample_layers(req: PlanRequest, covered: list[ParamBlock], forms: dict[str, Form],
                       modules: dict[str, object]) -> dict[str, int]:
    """Layers whose collection passes keep per-sample gradients instead of factors, with their parameter counts.

    Norm layers always; other layers when every block using them needs per-sample gradients anyway and
    ``k P`` scalars per example are fewer than the factors' ``T D + k T C`` (early convolutions: ``T`` large).
    """
    users: dict[str, list[ParamBlock]] = {}
    for blk in covered:
        for name in blk.use_modules:
            users.setdefault(name, []).append(blk)
    layers = {}
    for name, blocks in users.items():
        module = modules[name]
        size = sum(module._parameters[local].numel() for local in ("weight", "bias")
                   if module._parameters.get(local) is not None)
        rule = dict(blocks[0].rules)[name]
        shape = req.profiles[0].layers[name]
        factors = shape.tokens * shape.record_width * shape.record_itemsize / req.itemsize + (
            req.k * shape.tokens * shape.grad_width)
        per_sample = all(forms[b.name].layer_per_sample for b in blocks)
        if rule.compact or (per_sample and req.k * size <= factors):
            layers[name] = size
    return layers


def _stored_per_example(req: PlanRequest, profile: SetProfile, modules: list[str],
                        compact: dict[str, int]) -> int:
    """Layer-data bytes per example of ``modules`` in one set."""
    total = 0
    for name in modules:
        if name in compact:
            total += req.k * compact[name] * req.itemsize
            continue
        shape = profile.layers[name]
        total += shape.tokens * shape.record_width * shape.record_itemsize
        total += req.k * shape.tokens * shape.grad_width * req.itemsize
    return total


def _collections(blocks_1: int, blocks_2: int, symmetric: bool) -> int:
    if symmetric:
        return blocks_1 * (blocks_1 + 1) // 2
    return blocks_1 + (1 if blocks_2 == 1 else blocks_1 * blocks_2)


def _rows_calls(req: PlanRequest, chunk: int, outputs: int) -> int:
    n1, n2 = req.n
    a, b, o = _ceil(n1, chunk), _ceil(n2, chunk), _ceil(req.k, outputs)
    if req.sketch is not None:
        return o * (a if req.symmetric else a + b)
    if req.full:
        a, b = a * o, b * o
        return a + (a * (a - 1) // 2 if req.symmetric else a * b)
    return o * (a + (a * (a - 1) // 2 if req.symmetric else a * b))


def _result_bytes(req: PlanRequest) -> int:
    """Bytes of the returned kernel(s): ``n1 n2`` (trace) or ``n1 n2 k^2`` (full) scalars, per block with
    ``per_layer``."""
    n1, n2 = req.n
    k_result = req.k * req.k if req.full else 1
    return n1 * n2 * k_result * req.itemsize * (len(req.blocks) if req.per_layer else 1)


@dataclass(frozen=True)
class _Collection:
    """Step 1 of a plan: the forms of the covered blocks and the chunks of their collection passes.

    Attributes:
        geometries: Each covered block's sizes.
        forms: Each covered block's form, chosen by cost.
        compact: Layers whose collection passes keep per-sample gradients, with their parameter counts.
        cost: ``(examples, outputs) -> bytes`` of one collection pass.
        sample_chunk: Examples per collection forward pass.
        output_chunk: Outputs per batched backward pass.
    """

    geometries: dict[str, Geometry]
    forms: dict[str, Form]
    compact: dict[str, int]
    cost: Callable[[int, int], int]
    sample_chunk: int
    output_chunk: int


def _plan_collection(req: PlanRequest, covered: list[ParamBlock], modules: dict[str, object],
                     room: int) -> _Collection:
    """Forms by cost (on a provisional half of the room), what each layer keeps, and the collection chunks.

    A pass over ``c`` examples and ``q`` outputs keeps ``c (1 + q) A`` bytes of graph plus ``c q`` times the fresh
    output gradients (and per-sample gradients); it is kept under a quarter of the room and
    :data:`COLLECT_TARGET`.
    """
    b = req.itemsize
    act = max(p.activation_bytes for p in req.profiles)
    geometries = {blk.name: _geometry(req, blk, modules) for blk in covered}
    forms = {blk.name: _choose(req, blk, geometries[blk.name], _forms(req, blk), max(req.n), room // 2)[1]
             for blk in covered}
    compact = _per_sample_layers(req, covered, forms, modules)
    watched = list(dict.fromkeys(name for blk in covered for name in blk.use_modules))
    fresh = sum(req.profiles[0].layers[name].tokens * req.profiles[0].layers[name].grad_width for name in watched)
    fresh += sum(compact.values())
    collect_cost = lambda c, q: c * (1 + q) * act + c * q * fresh * b  # noqa: E731
    target = min(room // 4, max(COLLECT_TARGET, collect_cost(1, req.k)))
    c_chunk, q_chunk = _chunks(max(req.n), req.k, collect_cost, target) if covered else (1, 1)
    return _Collection(geometries, forms, compact, collect_cost, c_chunk, q_chunk)


@dataclass(frozen=True)
class _Storage:
    """Step 2 of a plan: how the layer data is held.

    Attributes:
        groups: Covered blocks collected together, group by group.
        stored_peak: Bytes of layer data alive at once.
        sample_blocks: Examples per collection block in each set.
    """

    groups: list[list[ParamBlock]]
    stored_peak: int
    sample_blocks: tuple[int, int]


def _plan_storage(req: PlanRequest, covered: list[ParamBlock], compact: dict[str, int], room: int) -> _Storage:
    """Layer groups and example blocks whose layer data fits half the room.

    Consecutive blocks join a group while its data fits (blocks sharing a layer always do); when one group alone
    does not fit, the examples are split into blocks collected pair by pair.
    """
    n1, n2 = req.n
    groups: list[list[ParamBlock]] = []
    sizes: list[int] = []
    for blk in covered:
        per_example = [_stored_per_example(req, p, list(blk.use_modules), compact) for p in req.profiles]
        alive = per_example[0] * n1 + (0 if req.symmetric else per_example[1] * n2)
        last = {name for x in (groups[-1] if groups else []) for name in x.use_modules}
        shares = bool(last & set(blk.use_modules))
        if groups and (shares or sizes[-1] + alive <= room // 2):
            groups[-1].append(blk)
            sizes[-1] += alive
        else:
            groups.append([blk])
            sizes.append(alive)
    stored_peak = max(sizes, default=0)
    sample_block = max(req.n)
    if stored_peak > room // 2:
        per_example = max(sizes) / max(n1 + (0 if req.symmetric else n2), 1)
        sample_block = max(1, int(room // 2 // max(2 * per_example, 1)))
        stored_peak = int(min(stored_peak, 2 * sample_block * per_example))
    return _Storage(groups, stored_peak, (min(sample_block, n1), min(sample_block, n2)))


def _collection_passes(req: PlanRequest, collection: _Collection, storage: _Storage) -> tuple[int, int]:
    """Forward and backward passes of the collection: per layer group, per pair of example blocks."""
    n1, n2 = req.n
    sb1, sb2 = storage.sample_blocks
    collections = _collections(_ceil(n1, sb1), _ceil(n2, sb2), req.symmetric) * len(storage.groups)
    forwards = collections * _ceil(sb1, collection.sample_chunk)
    return forwards, forwards * _ceil(req.k, collection.output_chunk)


def _plan_layer_blocks(req: PlanRequest, covered: list[ParamBlock], collection: _Collection, storage: _Storage,
                       room: int) -> tuple[dict[str, BlockPlan], int]:
    """Chunks of each covered block's kernel in what the layer data leaves.

    Returns:
        The block plans, and the largest working memory of one block.
    """
    sb1, sb2 = storage.sample_blocks
    work_room = max(room - storage.stored_peak, 0)
    limit = sb1 if req.symmetric else min(sb1, sb2)
    plans, peak = {}, 0
    for blk in covered:
        geometry = collection.geometries[blk.name]
        flops, form, c, q, working = _choose(req, blk, geometry, [collection.forms[blk.name]], limit, work_room)
        rules = "+".join(dict.fromkeys(rule.name for _, rule in blk.rules))
        plans[blk.name] = BlockPlan(blk.name, rules, form, geometry.params, c, q, flops, working)
        peak = max(peak, working)
    return plans, peak


@dataclass(frozen=True)
class _Generic:
    """Step 4 of a plan: the generic blocks.

    Attributes:
        groups: Generic blocks whose rows are computed together.
        sample_chunk: Examples per rows call.
        output_chunk: Outputs per rows call.
        peak: Working bytes of one rows call.
        calls: Rows calls (each one forward and one backward pass).
        plans: The block plans.
    """

    groups: list[list[ParamBlock]]
    sample_chunk: int = 1
    output_chunk: int = 1
    peak: int = 0
    calls: int = 0
    plans: dict[str, BlockPlan] = field(default_factory=dict)


def _plan_generic(req: PlanRequest, generic: list[ParamBlock], room: int) -> _Generic:
    """Groups of generic blocks (parameters fitting an eighth of the room) and the chunks of their rows calls."""
    if not generic:
        return _Generic([])
    b = req.itemsize
    act = max(p.activation_bytes for p in req.profiles)
    n1, n2 = req.n
    groups: list[list[ParamBlock]] = []
    form = Form.FULL_BATCH if req.implementation is Implementation.FULL_BATCH else Form.JACOBIAN
    batch_graph = max(req.n) * act if form is Form.FULL_BATCH else 0
    for blk in generic:
        size = block_sizes(req, blk)
        if groups and (sum(block_sizes(req, x) for x in groups[-1]) + size) * 8 * b <= room // 8:
            groups[-1].append(blk)
        else:
            groups.append([blk])
    widest = max(sum(block_sizes(req, x) for x in g) for g in groups)
    padded = widest if req.sketch is None else _ceil(widest, req.sketch) * req.sketch
    sketches = 0 if req.sketch is None else (n1 + n2) * req.k * min(req.sketch, widest) * b
    per_row = 4 * padded * b + act + batch_graph
    generic_cost = lambda c, q: batch_graph + sketches + c * q * per_row  # noqa: E731
    g_chunk, g_out = _chunks(max(req.n), req.k, generic_cost, room)
    peak = generic_cost(g_chunk, g_out)
    plans = {blk.name: BlockPlan(blk.name, "generic", form, block_sizes(req, blk), g_chunk, g_out, 0, peak)
             for blk in generic}
    return _Generic(groups, g_chunk, g_out, peak, _rows_calls(req, g_chunk, g_out) * len(groups), plans)


def make_plan(req: PlanRequest, modules: dict[str, object]) -> NtkPlan:
    """Plan one computation (see the module docstring): the result first, then the collection passes of the covered
    blocks, the storage of their layer data, their kernel chunks, and the generic blocks.

    Args:
        req: The request.
        modules: ``module name -> module`` of the layers the covered blocks use.

    Returns:
        The plan; ``plan.fits`` is false when even the smallest chunks exceed the budget.
    """
    result = _result_bytes(req)
    room = max(req.budget - result, 0)
    covered = [blk for blk in req.blocks if blk.name in req.covered]
    generic = [blk for blk in req.blocks if blk.name not in req.covered]
    collection = _plan_collection(req, covered, modules, room)
    storage = _plan_storage(req, covered, collection.compact, room)
    forwards, backwards = _collection_passes(req, collection, storage)
    layer_plans, peak_blocks = _plan_layer_blocks(req, covered, collection, storage, room)
    rows = _plan_generic(req, generic, room)
    peak_collect = storage.stored_peak + collection.cost(collection.sample_chunk, collection.output_chunk)
    peak = result + max(peak_collect if covered else 0, storage.stored_peak + peak_blocks if covered else 0, rows.peak)
    plans = {**layer_plans, **rows.plans}
    return NtkPlan(
        budget_bytes=req.budget,
        peak_bytes=int(peak),
        result_bytes=result,
        stored_bytes=int(storage.stored_peak),
        forward_passes=forwards + rows.calls,
        backward_passes=backwards + rows.calls,
        collect_sample_chunk=collection.sample_chunk,
        collect_output_chunk=collection.output_chunk,
        sample_blocks=storage.sample_blocks,
        per_sample_layers=tuple(collection.compact),
        layer_groups=tuple(tuple(x.name for x in g) for g in storage.groups),
        generic_groups=tuple(tuple(x.name for x in g) for g in rows.groups),
        generic_sample_chunk=rows.sample_chunk,
        generic_output_chunk=rows.output_chunk,
        blocks=tuple(plans[blk.name] for blk in req.blocks),
    )
