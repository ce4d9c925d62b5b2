from archive.api import chain, closures, export

urlpatterns = [*chain.urlpatterns, *closures.urlpatterns, *export.urlpatterns]
