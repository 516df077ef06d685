# Sphinx configuration of the strata.overlay2 documentation site (make docs; devtools/docs.sh).
# Laid out as antsibull-docs sphinx-init lays it out. The site is built offline: the references the generated
# pages make into the Ansible documentation resolve through ansible_devel.inv, a small inventory that
# devtools/docs_inventory.py writes (no network is needed; the links still point at docs.ansible.com).

import os

project = 'strata.overlay2'
copyright = 'strata.overlay2 contributors'  # pylint: disable=redefined-builtin
title = 'strata.overlay2'
html_short_title = 'strata.overlay2'

extensions = ['sphinx.ext.intersphinx', 'sphinx_antsibull_ext']
pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'
html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

intersphinx_mapping = {
    'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/',
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ansible_devel.inv')),
}
default_role = 'any'
nitpicky = True
