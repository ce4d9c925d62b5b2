"""Support's view of the hash chain: every health check (a broken one stands out and is filterable),
and the chain itself and its daily closures, read-only — the database refuses any change to them anyway.
Re-running a check and acknowledging a break are support actions: a reason, and a line in the log."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from archive.models import ChainCheck, ChainEntry, ChainHead, Closure
from archive.services import chain_check
from scell.admin_base import ReadOnlyAdmin, action_with_reason, support_action_record


class UnacknowledgedFilter(admin.SimpleListFilter):
    title = "acknowledged"
    parameter_name = "acknowledged"

    def lookups(self, request, model_admin):
        return [("no", "not yet"), ("yes", "yes")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(acknowledged_by__isnull=True)
        if self.value() == "yes":
            return queryset.filter(acknowledged_by__isnull=False)
        return queryset


@admin.register(ChainCheck)
class ChainCheckAdmin(ReadOnlyAdmin):
    list_display = [
        "result_badge",
        "chain_key",
        "tenant",
        "entries_checked",
        "first_broken_seq",
        "message",
        "started_at",
        "finished_at",
        "acknowledged_by",
    ]
    list_filter = ["result", UnacknowledgedFilter, "started_at"]
    search_fields = ["chain_key", "tenant__identifier", "tenant__legal_name"]
    date_hierarchy = "started_at"
    actions = ["rerun_check", "acknowledge"]

    @admin.display(description="result", ordering="result")
    def result_badge(self, obj: ChainCheck) -> str:
        if obj.result == ChainCheck.Result.BROKEN:
            return mark_safe('<strong style="color:#fff;background:#ba2121;padding:2px 6px">BROKEN</strong>')
        return mark_safe('<span style="color:#2a7a2a">intact</span>')

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # The alert support must not miss: a break nobody has looked at yet.
        pending = ChainCheck.objects.filter(result=ChainCheck.Result.BROKEN, acknowledged_by__isnull=True)
        count = pending.values("chain_key").distinct().count()
        if count:
            messages.error(
                request,
                f"{count} chain(s) found broken and not yet acknowledged: the tenants are marked "
                "compromised. Filter on result = broken, acknowledged = not yet.",
            )
        return super().changelist_view(request, extra_context)

    @action_with_reason(
        description=_("Re-run the check of the selected chains"),
        permissions=["rerun"],
        note=_("Each chain is checked once, however many of its checks are selected."),
    )
    def rerun_check(self, request: HttpRequest, queryset: QuerySet[ChainCheck], reason: str) -> None:
        keys = sorted(set(queryset.values_list("chain_key", flat=True)))
        runs = []
        for key in keys:
            # The verification reads the whole chain outside any transaction (a chain can be millions of
            # links; chain_check records its outcome atomically): the log line follows its ChainCheck.
            for run in chain_check(chain_keys=[key]):
                with transaction.atomic():
                    support_action_record(
                        actor=request.user,
                        action="chain.check",
                        obj=run.check,
                        reason=reason,
                        details={
                            "chain_key": run.result.chain_key,
                            "ok": run.result.ok,
                            "first_broken_seq": run.result.first_broken_seq,
                        },
                    )
                runs.append(run)
        broken = [run.result for run in runs if not run.result.ok]
        level = messages.ERROR if broken else messages.SUCCESS
        summary = "; ".join(f"{r.chain_key} broken at {r.first_broken_seq} ({r.reason})" for r in broken)
        self.message_user(request, f"{len(runs)} chain(s) checked, {len(broken)} broken. {summary}", level)

    @action_with_reason(
        description=_("Acknowledge (support has looked at it)"),
        permissions=["acknowledge"],
        note=_("Checks already acknowledged are left as they are."),
    )
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[ChainCheck], reason: str) -> None:
        done = 0
        for check in queryset.filter(acknowledged_by__isnull=True).select_related("tenant"):
            with transaction.atomic():
                # Conditional: two people acknowledging at once log one acknowledgement.
                if not ChainCheck.objects.filter(pk=check.pk, acknowledged_by__isnull=True).update(
                    acknowledged_by=request.user
                ):
                    continue
                support_action_record(
                    actor=request.user,
                    action="chain_check.acknowledge",
                    obj=check,
                    reason=reason,
                    details={"chain_key": check.chain_key, "result": check.result},
                )
            done += 1
        self.message_user(
            request,
            ngettext("%d check acknowledged.", "%d checks acknowledged.", done) % done,
            messages.SUCCESS,
        )

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("archive.rerun_chaincheck")

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("archive.acknowledge_chaincheck")


@admin.register(ChainHead)
class ChainHeadAdmin(ReadOnlyAdmin):
    list_display = ["chain_key", "tenant", "sub_tenant", "livemode", "last_seq", "hash_hex", "updated_at"]
    list_filter = ["livemode"]
    search_fields = ["chain_key", "tenant__identifier"]

    @admin.display(description="last hash")
    def hash_hex(self, obj: ChainHead) -> str:
        return bytes(obj.last_hash).hex()


@admin.register(ChainEntry)
class ChainEntryAdmin(ReadOnlyAdmin):
    list_display = ["chain_key", "seq", "source_table", "source_id", "hash_hex", "created_at"]
    list_filter = ["source_table", "livemode"]
    search_fields = ["chain_key", "source_id"]
    readonly_fields = ["payload_text", "prev_hash_hex", "hash_hex"]
    exclude = ["payload", "prev_hash", "hash"]
    # Chains run to millions of rows: no COUNT(*) on every page.
    show_full_result_count = False

    @admin.display(description="hash")
    def hash_hex(self, obj: ChainEntry) -> str:
        return bytes(obj.hash).hex()

    @admin.display(description="previous hash")
    def prev_hash_hex(self, obj: ChainEntry) -> str:
        return bytes(obj.prev_hash).hex()

    @admin.display(description="payload")
    def payload_text(self, obj: ChainEntry) -> str:
        return bytes(obj.payload).decode("utf-8", errors="replace")


@admin.register(Closure)
class ClosureAdmin(ReadOnlyAdmin):
    list_display = ["day", "chain_key", "tenant", "livemode", "leaf_count", "ots_status", "bitcoin_block"]
    list_filter = ["ots_status", "livemode"]
    search_fields = ["chain_key", "tenant__identifier"]
    date_hierarchy = "day"
    list_select_related = ["tenant"]
    exclude = ["root", "ots_proof", "tsa_token"]
    readonly_fields = ["root_hex", "has_tsa_token"]

    @admin.display(description="Merkle root")
    def root_hex(self, obj: Closure) -> str:
        return bytes(obj.root).hex()

    @admin.display(description="RFC 3161 token", boolean=True)
    def has_tsa_token(self, obj: Closure) -> bool:
        return bool(obj.tsa_token)
