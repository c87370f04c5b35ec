from django.contrib import admin

from demo.models import Post


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "created_at"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    search_fields = ["title", "owner__username"]
