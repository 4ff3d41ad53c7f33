from django import template

from budgets import formatting

register = template.Library()

register.filter("sen", formatting.sen)
register.filter("signed_sen", formatting.signed_sen)
register.filter("percent", formatting.percent)
register.filter("total", formatting.total_html)
register.filter("ja", formatting.ja_text)
