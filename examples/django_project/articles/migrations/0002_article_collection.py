from django.db import migrations

from semsearch.django.operations import CreateCollection


class Migration(migrations.Migration):
    dependencies = [("articles", "0001_initial")]

    # the collection register() uses for Article: "<app_label>_<model_name>", settings as in SEMSEARCH
    operations = [CreateCollection("articles_article", model="local", dims=256, compression="halfvec")]
